/**
 * One environment's platform: keys and WAF, network, EKS, Aurora, wired
 * together. The environments (envs/staging, envs/production) call this with
 * their own values; the Helm add-ons are their second layer (modules/addons).
 */

data "aws_region" "current" {}

#### Keys and WAF

module "security" {
  source = "../security"

  name                     = var.name
  key_administrator_arns   = var.kms_admin_role_arns
  kms_deletion_window_days = var.kms_deletion_window_days
  waf_rate_limit           = var.waf_rate_limit
  certificate_arn          = var.certificate_arn
  log_retention_days       = var.log_retention_days
  tags                     = var.tags
}

#### Network

module "network" {
  source = "../network"

  name                    = var.name
  cidr_block              = var.vpc_cidr
  azs                     = var.azs
  single_nat_gateway      = var.single_nat_gateway
  cluster_name            = var.name
  logs_kms_key_arn        = module.security.logs_kms_key_arn
  flow_log_retention_days = var.log_retention_days
  tags                    = var.tags
}

#### Kubernetes

module "eks" {
  source = "../eks"

  name                = var.name
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

  tags = var.tags
}

#### Database

# 5432 is admitted only from the EKS cluster security group, never from a
# CIDR: this module offers no way to pass one.
module "aurora" {
  source = "../aurora"

  name                       = var.name
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
  performance_insights_retention_days = var.performance_insights_retention_days

  deletion_protection             = var.deletion_protection
  skip_final_snapshot             = var.skip_final_snapshot
  backup_retention_days           = var.backup_retention_days
  app_secret_recovery_window_days = var.app_secret_recovery_window_days

  tags = var.tags
}
