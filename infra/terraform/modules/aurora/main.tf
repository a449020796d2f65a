/**
 * Aurora PostgreSQL Serverless v2: a writer and readers in other AZs,
 * encrypted with a customer key, TLS-only, IAM authentication, a master
 * password RDS keeps and rotates in Secrets Manager, backups (automated and
 * AWS Backup), logs in CloudWatch, reachable only from given security groups.
 */

data "aws_partition" "current" {}

locals {
  partition          = data.aws_partition.current.partition
  major_version      = split(".", var.engine_version)[0]
  final_snapshot_id  = "${var.name}-final"
  reader_azs         = [for i in range(var.reader_count) : var.availability_zones[(i + 1) % length(var.availability_zones)]]
  exported_log_types = ["postgresql"]
}

#### Network

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Isolated database subnets of ${var.name}"
  subnet_ids  = var.subnet_ids

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_security_group" "this" {
  name        = "${var.name}-aurora"
  description = "PostgreSQL from the allowed security groups only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-aurora" })
}

# Ingress by security-group reference only: there is no CIDR rule to widen.
# No egress rule: the database never opens connections.
resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = var.allowed_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value

  tags = merge(var.tags, { Name = "${var.name}-aurora-from-${each.key}" })
}

#### Parameters

resource "aws_rds_cluster_parameter_group" "this" {
  name        = "${var.name}-aurora-postgresql${local.major_version}"
  family      = "aurora-postgresql${local.major_version}"
  description = "TLS-only, slow-query and DDL logging for ${var.name}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "ssl_min_protocol_version"
    value = "TLSv1.2"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_ms)
  }

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

#### Cluster

resource "aws_cloudwatch_log_group" "postgresql" {
  # RDS exports to this exact name; creating it first sets retention and KMS.
  name              = "/aws/rds/cluster/${var.name}/postgresql"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-postgresql" })
}

resource "aws_rds_cluster" "this" {
  cluster_identifier = var.name
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned"
  engine_version     = var.engine_version
  database_name      = var.database_name
  port               = 5432

  master_username               = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  iam_database_authentication_enabled = true
  storage_encrypted                   = true
  kms_key_id                          = var.kms_key_arn

  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.this.id]
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.this.name

  serverlessv2_scaling_configuration {
    min_capacity = var.min_capacity
    max_capacity = var.max_capacity
  }

  backup_retention_period      = var.backup_retention_days
  preferred_backup_window      = var.preferred_backup_window
  preferred_maintenance_window = var.preferred_maintenance_window
  copy_tags_to_snapshot        = true
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = var.skip_final_snapshot
  final_snapshot_identifier    = var.skip_final_snapshot ? null : local.final_snapshot_id

  enabled_cloudwatch_logs_exports = local.exported_log_types

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_cloudwatch_log_group.postgresql]
}

# RDS rotates the master password itself (no Lambda); this sets how often.
resource "aws_secretsmanager_secret_rotation" "master" {
  secret_id = aws_rds_cluster.this.master_user_secret[0].secret_arn

  rotation_rules {
    automatically_after_days = var.master_password_rotation_days
  }
}

#### Instances

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json

  tags = merge(var.tags, { Name = "${var.name}-rds-monitoring" })
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# The writer is created first (and has the lowest promotion tier), so it is
# the instance that takes the writer role; readers follow in other AZs.
resource "aws_rds_cluster_instance" "writer" {
  identifier         = "${var.name}-1"
  cluster_identifier = aws_rds_cluster.this.id
  engine             = aws_rds_cluster.this.engine
  engine_version     = aws_rds_cluster.this.engine_version
  instance_class     = "db.serverless"
  availability_zone  = var.availability_zones[0]
  promotion_tier     = 0

  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  ca_cert_identifier                    = "rds-ca-rsa2048-g1"
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = var.performance_insights_retention_days
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  tags = merge(var.tags, { Name = "${var.name}-1", Role = "writer" })

  depends_on = [aws_iam_role_policy_attachment.monitoring]
}

resource "aws_rds_cluster_instance" "reader" {
  count = var.reader_count

  identifier         = "${var.name}-${count.index + 2}"
  cluster_identifier = aws_rds_cluster.this.id
  engine             = aws_rds_cluster.this.engine
  engine_version     = aws_rds_cluster.this.engine_version
  instance_class     = "db.serverless"
  availability_zone  = local.reader_azs[count.index]
  promotion_tier     = 1

  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  ca_cert_identifier                    = "rds-ca-rsa2048-g1"
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = var.performance_insights_retention_days
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  tags = merge(var.tags, { Name = "${var.name}-${count.index + 2}", Role = "reader" })

  depends_on = [aws_rds_cluster_instance.writer]
}

#### Application secret

# The application's complete connection settings for its own, non-master
# database user: username, password, host, port, dbname (the properties the
# Helm chart's ExternalSecret assembles the URL from). The password is
# generated by Secrets Manager as an ephemeral value and written through a
# write-only argument, so it is in neither the plan nor the state. The
# database bootstrap hook of the Helm chart (palaver db-bootstrap Job) reads
# this secret and the master secret, and creates or updates the role with
# this password and least privilege (CONNECT, and USAGE/CREATE on its own
# schema). Bump app_password_version to rotate.
resource "aws_secretsmanager_secret" "app" {
  name                    = "${var.name}/app/database"
  description             = "Palaver application database connection (username, password, host, port, dbname) for ${var.name}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.app_secret_recovery_window_days

  tags = merge(var.tags, { Name = "${var.name}-app-database" })
}

# The value, with its generated password, is written by modules/secret-value
# from the add-ons layer (envs/<env>/addons): an ephemeral password through
# a write-only argument. (Kept out of this module because mocked
# `terraform test` runs cannot evaluate ephemeral resources.) The
# `connection` output is the rest of the value.

#### AWS Backup

# Daily recovery points in a vault encrypted with the same customer key, on
# top of the cluster's own point-in-time recovery.
resource "aws_backup_vault" "this" {
  name          = var.name
  kms_key_arn   = var.kms_key_arn
  force_destroy = var.skip_final_snapshot

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_backup_plan" "this" {
  name = var.name

  rule {
    rule_name         = "daily"
    target_vault_name = aws_backup_vault.this.name
    schedule          = "cron(0 3 * * ? *)"

    lifecycle {
      delete_after = var.backup_retention_days
    }
  }

  tags = merge(var.tags, { Name = var.name })
}

data "aws_iam_policy_document" "backup_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["backup.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "backup" {
  name               = "${var.name}-backup"
  assume_role_policy = data.aws_iam_policy_document.backup_assume.json

  tags = merge(var.tags, { Name = "${var.name}-backup" })
}

resource "aws_iam_role_policy_attachment" "backup" {
  for_each = toset(["AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"])

  role       = aws_iam_role.backup.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/${each.value}"
}

resource "aws_backup_selection" "this" {
  name         = var.name
  plan_id      = aws_backup_plan.this.id
  iam_role_arn = aws_iam_role.backup.arn
  resources    = [aws_rds_cluster.this.arn]
}
