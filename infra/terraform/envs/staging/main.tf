/**
 * Staging platform layer: modules/platform (keys and WAF, network, EKS,
 * Aurora) with staging's values. The Helm add-ons are a second layer,
 * applied after this one: ./addons.
 */

locals {
  environment = "staging"
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
  vpc_cidr = "10.10.0.0/16"

  node_groups = {
    general = {
      instance_types = ["t3.large", "t3a.large"]
      min_size       = 1
      max_size       = 4
      desired_size   = 2
      labels         = { workload = "general" }
    }
  }
  aurora_min_capacity = 0.5
  aurora_max_capacity = 4

  # Staging is torn down and rebuilt at will: one NAT gateway for all AZs
  # (cheaper; an AZ outage takes egress down), no deletion protection, no
  # final snapshot, secrets deleted at once, short retention and key
  # deletion windows.
  single_nat_gateway                  = true
  deletion_protection                 = false
  skip_final_snapshot                 = true
  backup_retention_days               = 7
  performance_insights_retention_days = 7
  kms_deletion_window_days            = 7
  app_secret_recovery_window_days     = 0
  files_force_destroy                 = true

  # Accounts through Cognito and the Valkey broker run in staging first.
  identity_enabled       = true
  identity_callback_urls = ["https://${var.host_name}/"]
  identity_self_sign_up  = true
  bus_enabled            = true
  bus_node_type          = "cache.t4g.micro"

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
