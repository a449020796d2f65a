# Mock data of the AWS provider, shared by every *.tftest.hcl here:
#
#   mock_provider "aws" {
#     source = "../../tests/mocks/aws"   # relative to the tested directory
#   }
#
# Nothing is created and no credentials are needed. Data sources get fixed,
# valid values (the real provider still validates every resource's
# arguments, so ARNs and policy JSON must be well formed).

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

# A value ElastiCache accepts as an auth token (16-128 characters).
mock_data "aws_secretsmanager_random_password" {
  defaults = {
    random_password = "MockTokenMockTokenMockTokenMockTokenMockTokenMockTokenMockToken1"
  }
}

# An issued certificate (modules/certificate looks it up without a zone).
mock_data "aws_acm_certificate" {
  defaults = {
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  }
}

mock_resource "aws_acm_certificate" {
  defaults = {
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  }
}
