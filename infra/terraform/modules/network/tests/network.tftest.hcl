# Run from modules/network: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  name             = "palaver-test"
  azs              = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  cluster_name     = "palaver-test"
  logs_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "spans_three_azs_with_a_nat_gateway_each" {
  command = plan

  assert {
    condition     = length(aws_subnet.public) == 3 && length(aws_subnet.private) == 3 && length(aws_subnet.database) == 3
    error_message = "Expected public, private and database subnets in each of the three AZs."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3 && length(aws_route.private_nat) == 3
    error_message = "Expected one NAT gateway per AZ, each used by its AZ's private route table."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Public subnets must not hand out public IPs to instances."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.tags["kubernetes.io/role/elb"] == "1" && s.tags["kubernetes.io/cluster/palaver-test"] == "shared"])
    error_message = "Public subnets need the load balancer controller's elb and cluster tags."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.tags["kubernetes.io/role/internal-elb"] == "1" && s.tags["kubernetes.io/cluster/palaver-test"] == "shared"])
    error_message = "Private subnets need the internal-elb and cluster tags."
  }
}

run "logs_flows_and_locks_down_the_database_subnets" {
  command = plan

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination_type == "cloud-watch-logs"
    error_message = "VPC flow logs must capture all traffic to CloudWatch Logs."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == var.logs_kms_key_arn
    error_message = "The flow log group must be encrypted with the given KMS key."
  }

  assert {
    condition     = alltrue([for r in aws_network_acl.database.ingress : r.from_port == 5432 && r.to_port == 5432 && r.cidr_block != "0.0.0.0/0"])
    error_message = "The database NACL may only admit PostgreSQL from the private subnets."
  }

  assert {
    condition     = length(aws_vpc_endpoint.interface) == 5 && aws_vpc_endpoint.s3.vpc_endpoint_type == "Gateway"
    error_message = "Expected the S3 gateway endpoint and five interface endpoints."
  }

  assert {
    condition     = alltrue([for e in aws_vpc_endpoint.interface : e.private_dns_enabled])
    error_message = "Interface endpoints need private DNS so the SDKs use them."
  }
}

run "staging_shares_one_nat_gateway" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_route.private_nat) == 3
    error_message = "With single_nat_gateway every private route table must use the one NAT gateway."
  }
}

run "rejects_fewer_than_three_azs" {
  command = plan

  variables {
    azs = ["eu-west-1a", "eu-west-1b"]
  }

  expect_failures = [var.azs]
}
