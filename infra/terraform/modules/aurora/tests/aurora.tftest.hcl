# Run from modules/aurora: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  name                       = "palaver-test"
  vpc_id                     = "vpc-0123456789abcdef0"
  subnet_ids                 = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
  availability_zones         = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  allowed_security_group_ids = { eks_nodes = "sg-0123456789abcdef0" }
  kms_key_arn                = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  logs_kms_key_arn           = "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000"
}

run "encrypted_tls_only_and_iam_authenticated" {
  command = plan

  assert {
    condition     = aws_rds_cluster.this.storage_encrypted && aws_rds_cluster.this.kms_key_id == var.kms_key_arn
    error_message = "Storage must be encrypted with the customer KMS key."
  }

  assert {
    condition     = aws_rds_cluster_instance.writer.performance_insights_enabled && aws_rds_cluster_instance.writer.performance_insights_kms_key_id == var.kms_key_arn
    error_message = "Performance Insights must be on and encrypted with the customer KMS key."
  }

  assert {
    condition     = anytrue([for p in aws_rds_cluster_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "The cluster parameter group must require TLS (rds.force_ssl = 1)."
  }

  assert {
    condition     = aws_rds_cluster.this.iam_database_authentication_enabled && aws_rds_cluster.this.manage_master_user_password
    error_message = "IAM authentication on, master password managed by RDS in Secrets Manager."
  }

  assert {
    condition     = aws_secretsmanager_secret.app.kms_key_id == var.kms_key_arn && aws_secretsmanager_secret_rotation.master.rotation_rules[0].automatically_after_days == 30
    error_message = "Secrets must be encrypted with the customer key and the master password rotated."
  }

  assert {
    condition     = aws_rds_cluster.this.serverlessv2_scaling_configuration[0].min_capacity == 0.5 && aws_rds_cluster.this.serverlessv2_scaling_configuration[0].max_capacity == 8
    error_message = "Serverless v2 capacity must follow min_capacity and max_capacity."
  }
}

run "no_cidr_ingress_only_the_node_security_group" {
  command = plan

  assert {
    condition = alltrue([
      for r in aws_vpc_security_group_ingress_rule.this :
      r.cidr_ipv4 == null && r.cidr_ipv6 == null && r.prefix_list_id == null && r.referenced_security_group_id == "sg-0123456789abcdef0" && r.from_port == 5432 && r.to_port == 5432
    ])
    error_message = "The database may only be reached on 5432 from the allowed security groups, never from a CIDR (let alone 0.0.0.0/0)."
  }

  assert {
    condition     = aws_rds_cluster_instance.writer.publicly_accessible == false && alltrue([for r in aws_rds_cluster_instance.reader : r.publicly_accessible == false])
    error_message = "No instance may be publicly accessible."
  }
}

run "writer_and_reader_in_different_azs" {
  command = plan

  assert {
    condition     = aws_rds_cluster_instance.writer.availability_zone != aws_rds_cluster_instance.reader[0].availability_zone
    error_message = "The reader must not share the writer's AZ."
  }

  assert {
    condition     = aws_rds_cluster_instance.writer.instance_class == "db.serverless"
    error_message = "Instances must be Serverless v2."
  }
}

run "protected_with_a_final_snapshot_by_default" {
  command = plan

  assert {
    condition     = aws_rds_cluster.this.deletion_protection && !aws_rds_cluster.this.skip_final_snapshot && aws_rds_cluster.this.final_snapshot_identifier == "palaver-test-final"
    error_message = "By default the cluster refuses deletion and takes a final snapshot."
  }

  assert {
    condition     = aws_rds_cluster.this.backup_retention_period == 14 && aws_backup_selection.this.name == "palaver-test"
    error_message = "Automated backups with retention, plus an AWS Backup plan."
  }
}

run "rejects_max_capacity_below_min" {
  command = plan

  variables {
    min_capacity = 8
    max_capacity = 4
  }

  expect_failures = [var.max_capacity]
}

run "rejects_a_single_availability_zone" {
  command = plan

  variables {
    availability_zones = ["eu-west-1a"]
  }

  expect_failures = [var.availability_zones]
}
