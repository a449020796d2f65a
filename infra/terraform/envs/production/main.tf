/**
 * Production platform layer: modules/platform (keys and WAF, network, EKS,
 * Aurora) with production's values. The Helm add-ons are a second layer,
 * applied after this one: ./addons.
 */

locals {
  environment = "production"
  account     = data.terraform_remote_state.account.outputs
}

data "terraform_remote_state" "account" {
  backend = "s3"

  config = {
    bucket = var.state_bucket
    key    = "account/account.tfstate"
    region = var.state_region
  }
}

provider "aws" {
  region = "eu-west-1"

  default_tags {
    tags = {
      Project     = "palaver"
      Environment = local.environment
      ManagedBy   = "terraform"
      Stack       = "infra/terraform/envs/${local.environment}"
    }
  }
}

module "platform" {
  source = "../../modules/platform"

  name     = "palaver-${local.environment}"
  azs      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  vpc_cidr = "10.20.0.0/16"

  node_groups = {
    general = {
      instance_types = ["m6i.large", "m6a.large"]
      min_size       = 3
      max_size       = 12
      desired_size   = 3
      labels         = { workload = "general" }
    }
  }
  aurora_min_capacity = 2
  aurora_max_capacity = 32

  # Protection is the module's default and production keeps all of it (the
  # tests assert it): a NAT gateway per AZ, deletion protection, a final
  # snapshot, 30 days of backups, secret recovery and key deletion window,
  # Performance Insights kept 31 days.

  environment       = local.environment
  github_repository = var.github_repository
  alert_emails      = var.alert_emails

  # The account layer (../account): the GitHub OIDC provider and the image
  # repository, shared by both environments.
  github_oidc_provider_arn = local.account.github_oidc_provider_arn
  github_connection_arn    = var.github_connection_arn
  ecr_repository_url       = local.account.ecr_repository_url
  ecr_repository_arn       = local.account.ecr_repository_arn
  ecr_kms_key_arn          = local.account.ecr_kms_key_arn

  host_name                   = var.host_name
  route53_zone_id             = var.route53_zone_id
  cluster_public_access_cidrs = var.cluster_public_access_cidrs
  cluster_admin_role_arns     = var.cluster_admin_role_arns
  kms_admin_role_arns         = var.kms_admin_role_arns
}
