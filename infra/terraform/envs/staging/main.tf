/**
 * Staging platform layer: keys and WAF, network, EKS, Aurora.
 * The Helm add-ons are a second layer, applied after this one: ./addons.
 */

locals {
  environment = "staging"
  name        = "palaver-${local.environment}"

  # Per-resource tags on top of default_tags (the modules add Name).
  tags = {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "palaver"
      Environment = local.environment
      ManagedBy   = "terraform"
      Stack       = "infra/terraform/envs/${local.environment}"
    }
  }
}

#### Keys and WAF

module "security" {
  source = "../../modules/security"

  name                     = local.name
  key_administrator_arns   = var.kms_admin_role_arns
  kms_deletion_window_days = 7
  waf_rate_limit           = var.waf_rate_limit
  certificate_arn          = var.certificate_arn
  log_retention_days       = var.log_retention_days
  tags                     = local.tags
}

#### Network

module "network" {
  source = "../../modules/network"

  name       = local.name
  cidr_block = var.vpc_cidr
  azs        = var.azs
  # One NAT for all AZs: staging trades AZ-independent egress for cost.
  single_nat_gateway      = true
  cluster_name            = local.name
  logs_kms_key_arn        = module.security.logs_kms_key_arn
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

#### Kubernetes

module "eks" {
  source = "../../modules/eks"

  name                = local.name
  kubernetes_version  = var.kubernetes_version
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  public_access_cidrs = var.cluster_public_access_cidrs
  admin_role_arns     = var.cluster_admin_role_arns
  secrets_kms_key_arn = module.security.eks_kms_key_arn
  logs_kms_key_arn    = module.security.logs_kms_key_arn
  log_retention_days  = var.log_retention_days
  node_groups         = var.node_groups

  app_secret_arn         = module.aurora.app_secret_arn
  app_secret_kms_key_arn = module.security.rds_kms_key_arn
  db_iam_auth = var.app_db_iam_username == null ? null : {
    cluster_resource_id = module.aurora.cluster_resource_id
    username            = var.app_db_iam_username
  }
  opensearch_domain_arn = var.opensearch_domain_arn

  tags = local.tags
}

#### Database

module "aurora" {
  source = "../../modules/aurora"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.database_subnet_ids
  availability_zones         = var.azs
  allowed_security_group_ids = { eks_nodes = module.eks.node_security_group_id }

  engine_version = var.aurora_engine_version
  min_capacity   = var.aurora_min_capacity
  max_capacity   = var.aurora_max_capacity
  reader_count   = var.aurora_reader_count

  kms_key_arn                         = module.security.rds_kms_key_arn
  logs_kms_key_arn                    = module.security.logs_kms_key_arn
  log_retention_days                  = var.log_retention_days
  performance_insights_retention_days = 7

  # Staging is torn down and rebuilt at will: no deletion protection, no
  # final snapshot, secrets deleted at once.
  deletion_protection             = false
  skip_final_snapshot             = true
  backup_retention_days           = 7
  app_secret_recovery_window_days = 0

  tags = local.tags
}
