/**
 * Staging add-ons layer: the platform Helm releases, installed into the
 * cluster that the platform layer (..) created. Applied after it.
 */

locals {
  environment = "staging"
  # The `platform` output of ../ (every output of modules/platform). The
  # fallback reads a state written before modules/platform existed, whose
  # outputs had the same names at the top level; drop it once ../ is applied.
  platform = try(data.terraform_remote_state.platform.outputs.platform, data.terraform_remote_state.platform.outputs)
}

provider "aws" {
  region = local.platform.region

  default_tags {
    tags = {
      Project     = "palaver"
      Environment = local.environment
      ManagedBy   = "terraform"
      Stack       = "infra/terraform/envs/${local.environment}/addons"
    }
  }
}

data "terraform_remote_state" "platform" {
  backend = "s3"

  config = {
    bucket = var.state_bucket
    key    = "${local.environment}/platform.tfstate"
    region = var.state_region
  }
}

data "aws_eks_cluster" "this" {
  name = local.platform.cluster_name
}

# A fresh token per call (aws eks get-token), so long installs never run
# past a token's 15-minute lifetime.
provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", data.aws_eks_cluster.this.name, "--region", local.platform.region]
    }
  }
}

module "addons" {
  source = "../../../modules/addons"

  cluster_name               = local.platform.cluster_name
  region                     = local.platform.region
  vpc_id                     = local.platform.vpc_id
  pod_identities             = local.platform.pod_identities
  application_log_group_name = local.platform.application_log_group_name
  opensearch_endpoint        = local.platform.opensearch_endpoint
  alert_topic_arn            = local.platform.alert_topic_arn
  storage_kms_key_arn        = local.platform.storage_kms_key_arn
  cluster_secret_store_name  = local.platform.cluster_secret_store_name

  # Staging keeps a week of metrics on a small volume.
  prometheus_retention    = "7d"
  prometheus_storage_size = "20Gi"
}

# The application's connection secret (created empty by the platform layer):
# its fields and a generated password, written without passing through the
# plan or the state. The chart's bootstrap hook creates the role with it.
module "app_secret_value" {
  source = "../../../modules/secret-value"

  secret_id     = local.platform.app_secret_arn
  value         = local.platform.app_connection
  value_version = local.platform.app_password_version
}
