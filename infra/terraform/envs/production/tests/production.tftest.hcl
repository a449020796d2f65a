# Run from envs/production: terraform init -backend=false && terraform test

# Providers are mocked: nothing is created and no credentials are needed.
# Data sources get fixed, valid values (the real provider still validates
# every resource's arguments, so ARNs and policy JSON must be well formed).
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:role/terraform-test"
      user_id    = "AROATESTTESTTESTTEST"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition          = "aws"
      dns_suffix         = "amazonaws.com"
      reverse_dns_prefix = "com.amazonaws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name        = "eu-west-1"
      description = "Europe (Ireland)"
      endpoint    = "ec2.eu-west-1.amazonaws.com"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Principal\":{\"Service\":\"ec2.amazonaws.com\"}}]}"
    }
  }
}

variables {
  certificate_arn             = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  cluster_public_access_cidrs = ["203.0.113.0/24"]
}

run "production_database_is_protected_and_encrypted" {
  command = plan

  assert {
    condition     = output.deletion_protection == true
    error_message = "Production's database must have deletion protection on."
  }

  assert {
    condition     = module.aurora.final_snapshot_identifier == "palaver-production-final"
    error_message = "Deleting production's database must take a final snapshot."
  }
}

run "production_has_a_nat_gateway_per_az" {
  command = plan

  assert {
    condition     = length(module.network.nat_public_ips) == 3
    error_message = "Production egress must survive an AZ outage."
  }
}

run "outputs_feed_the_helm_values" {
  command = plan

  assert {
    condition     = output.cluster_name == "palaver-production" && output.certificate_arn == var.certificate_arn
    error_message = "The Helm values need the cluster name and the certificate ARN."
  }

  assert {
    condition     = output.alb_ingress_annotations["alb.ingress.kubernetes.io/certificate-arn"] == var.certificate_arn
    error_message = "The ingress annotations must carry the certificate."
  }
}
