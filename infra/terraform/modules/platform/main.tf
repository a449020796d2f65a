/**
 * One environment's platform: keys and WAF, network, EKS, Aurora, wired
 * together. The environments (envs/staging, envs/production) call this with
 * their own values; the Helm add-ons are their second layer (modules/addons).
 */

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region                 = data.aws_region.current.name
  opensearch_domain_name = substr(replace(var.name, "palaver-", "logs-"), 0, 28)
  # Known before the domain exists, so the eks module's Fluent Bit policy and
  # the domain's access policy do not wait on each other.
  opensearch_domain_arn = "arn:${data.aws_partition.current.partition}:es:${local.region}:${data.aws_caller_identity.current.account_id}:domain/${local.opensearch_domain_name}"
}

#### The public host name and its certificate

# One value, host_name: the certificate's domain here and the release's
# Ingress host in helm_values below.
module "certificate" {
  source = "../certificate"

  host_name       = var.host_name
  route53_zone_id = var.route53_zone_id
  tags            = var.tags
}

#### Keys and WAF

module "security" {
  source = "../security"

  name                     = var.name
  key_administrator_arns   = var.kms_admin_role_arns
  kms_deletion_window_days = var.kms_deletion_window_days
  waf_rate_limit           = var.waf_rate_limit
  max_body_bytes           = var.max_body_bytes
  max_file_bytes           = var.max_file_bytes
  certificate_arn          = module.certificate.arn
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
  opensearch_domain_arn = local.opensearch_domain_arn

  # Only the api role (its own service account) reaches the files bucket.
  api_policy_jsons = { files = module.files.access_policy_json }

  extra_readable_secret_arns = concat([module.aurora.master_user_secret_arn], module.bus[*].secret_arn)
  alert_topic_arn            = module.monitoring.alert_topic_arn
  alert_topic_kms_key_arn    = module.security.alerts_kms_key_arn

  ci_admin_role_arns            = { ci-apply = module.ci.apply_role_arn }
  namespace_deploy_role_arns    = { ci-deploy = module.ci.deploy_role_arn }
  api_client_security_group_ids = { ci-runner = module.ci.runner_security_group_id }

  tags = var.tags
}

#### Uploaded files (issue 18)

module "files" {
  source = "../files"

  name                    = var.name
  kms_key_arn             = module.security.files_kms_key_arn
  prefix                  = var.files_prefix
  noncurrent_version_days = var.files_noncurrent_version_days
  force_destroy           = var.files_force_destroy
  tags                    = var.tags
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

#### Monitoring, alerting and the log search domain

module "monitoring" {
  source = "../monitoring"

  name               = var.name
  kms_key_arn        = module.security.alerts_kms_key_arn
  logs_kms_key_arn   = module.security.logs_kms_key_arn
  log_retention_days = var.log_retention_days
  alert_emails       = var.alert_emails
  runbook_base_url   = var.runbook_base_url
  availability_slo   = var.availability_slo

  application_log_group_name = module.eks.application_log_group_name
  web_acl_name               = module.security.web_acl_name
  db_cluster_identifier      = module.aurora.cluster_identifier

  vpc_id                               = module.network.vpc_id
  subnet_ids                           = module.network.private_subnet_ids
  opensearch_domain_name               = local.opensearch_domain_name
  opensearch_instance_count            = var.opensearch_instance_count
  opensearch_client_security_group_ids = { eks_nodes = module.eks.node_security_group_id }
  opensearch_writer_role_arns          = [module.eks.pod_identities["fluent-bit"].role_arn]
  opensearch_admin_role_arn            = coalesce(var.opensearch_admin_role_arn, module.ci.apply_role_arn)

  tags = var.tags
}

#### CI access and the release's values

# Everything the Helm release needs from the infrastructure, in the chart's
# own value paths (deploy/helm/palaver/values.yaml). The deploy workflow
# reads it from the SSM parameter of modules/ci and passes it to helm after
# the environment's values file; nothing infrastructure-specific is copied
# by hand into deploy/.
locals {
  helm_values = {
    image = { repository = var.ecr_repository_url }
    config = {
      # The ALB connects from inside the VPC: its X-Forwarded-For is believed.
      trustedProxies = [var.vpc_cidr]
    }
    database = {
      cidrs = module.network.database_subnet_cidrs
      port  = module.aurora.port
      externalSecret = {
        enabled        = true
        key            = module.aurora.app_secret_name
        secretStoreRef = { kind = "ClusterSecretStore", name = var.cluster_secret_store_name }
      }
      bootstrap = {
        enabled         = true
        masterSecretKey = module.aurora.master_user_secret_arn
      }
    }
    ingress = {
      # The host the certificate is for (modules/certificate), no other.
      hosts = [var.host_name]
      alb = {
        certificateArn = module.certificate.arn
        wafv2AclArn    = module.security.web_acl_arn
      }
    }
    # Uploaded files (issue 18): the api role's --file-store, its limit (the
    # WAF's upload-route rule follows the same variable) and the region of
    # the bucket; the credentials come from the api role's Pod Identity.
    fileStore = {
      url          = module.files.url
      maxFileBytes = var.max_file_bytes
      region       = local.region
    }
    networkPolicy = {
      ingress = { cidrs = [var.vpc_cidr] }
    }
    # Accounts through the Cognito user pool (issue 11), when there is one.
    auth = {
      oidc = {
        issuer   = one(module.identity[*].issuer_url) == null ? "" : one(module.identity[*].issuer_url)
        audience = one(module.identity[*].client_id) == null ? "" : one(module.identity[*].client_id)
      }
    }
    # The Valkey broker (issue 12), when there is one.
    bus = {
      redis = {
        enabled = var.bus_enabled
        key     = one(module.bus[*].secret_arn) == null ? "" : one(module.bus[*].secret_arn)
        port    = 6379
        cidrs   = var.bus_enabled ? module.network.private_subnet_cidrs : []
      }
    }
  }
}

#### Accounts (OIDC) and the fan-out broker, per environment

module "identity" {
  source = "../identity"
  count  = var.identity_enabled ? 1 : 0

  name                = var.name
  callback_urls       = var.identity_callback_urls
  logout_urls         = var.identity_logout_urls
  domain_prefix       = var.identity_domain_prefix
  self_sign_up        = var.identity_self_sign_up
  deletion_protection = var.deletion_protection

  tags = var.tags
}

module "bus" {
  source = "../bus"
  count  = var.bus_enabled ? 1 : 0

  name                        = var.name
  vpc_id                      = module.network.vpc_id
  subnet_ids                  = module.network.private_subnet_ids
  allowed_security_group_ids  = { eks_nodes = module.eks.node_security_group_id }
  kms_key_arn                 = module.security.rds_kms_key_arn
  logs_kms_key_arn            = module.security.logs_kms_key_arn
  log_retention_days          = var.log_retention_days
  node_type                   = var.bus_node_type
  secret_recovery_window_days = var.app_secret_recovery_window_days

  tags = var.tags
}

module "ci" {
  source = "../ci"

  name                     = var.name
  environment              = var.environment
  github_repository        = var.github_repository
  github_oidc_provider_arn = var.github_oidc_provider_arn
  github_connection_arn    = var.github_connection_arn
  cluster_arn              = module.eks.cluster_arn
  ecr_repository_arn       = var.ecr_repository_arn
  ecr_kms_key_arn          = var.ecr_kms_key_arn
  vpc_id                   = module.network.vpc_id
  private_subnet_ids       = module.network.private_subnet_ids
  logs_kms_key_arn         = module.security.logs_kms_key_arn
  log_retention_days       = var.log_retention_days
  helm_values              = local.helm_values

  tags = var.tags
}
