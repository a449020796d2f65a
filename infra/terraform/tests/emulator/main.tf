# The emulator stack of scripts/test-infra.sh (Terratest's role: apply,
# assert through the AWS API, destroy), applied to moto's server on
# loopback with the mirrored AWS provider. It calls the AWS-only modules
# whose APIs moto serves; `provider.tf` (the emulator's endpoints) is
# written by run.py next to this file in a temporary copy.
#
# Not applied here, with the reason (run.py prints this list too):
#   modules/eks, modules/platform: EKS add-ons, access entries and Pod
#     Identity associations are not served by moto (its EKS covers clusters
#     and node groups only);
#   modules/aurora: Aurora Serverless v2 scaling, managed master passwords
#     and AWS Backup plans are incomplete in moto;
#   modules/monitoring: OpenSearch domains with VPC options and
#     fine-grained access control are not served;
#   modules/ci: CodeBuild webhooks (the GitHub runner registration) are not
#     served;
#   modules/audit: Security Hub standards and GuardDuty detector features
#     are not served;
#   modules/certificate: ACM's DNS validation needs the real DNS, and a
#     certificate moto issues is not one any ALB serves (the mocked
#     `terraform test` of modules/platform covers both of its paths).
# Those are covered by `terraform test` (mocked provider) and their plans in
# GitHub Actions.

locals {
  name = "palaver-emulator"
}

module "security" {
  source = "../../modules/security"

  name            = local.name
  certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
}

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = "10.30.0.0/16"
  azs                     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  single_nat_gateway      = true
  cluster_name            = local.name
  logs_kms_key_arn        = module.security.logs_kms_key_arn
  flow_log_retention_days = 365
}

module "registry" {
  source = "../../modules/registry"

  github_repository = "palaver-chat/palaver"
  repository_name   = "palaver-emulator"
  state_bucket      = "palaver-emulator-state"
}

# The uploaded files' bucket (issue 18), and the api role's policy on a
# role like the one modules/eks gives the api role's Pod Identity.
module "files" {
  source = "../../modules/files"

  name          = local.name
  kms_key_arn   = module.security.files_kms_key_arn
  force_destroy = true
}

data "aws_iam_policy_document" "pod_identity_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "api" {
  name               = "${local.name}-api"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json

  tags = { Name = "${local.name}-api" }
}

resource "aws_iam_role_policy" "api" {
  name   = "files"
  role   = aws_iam_role.api.id
  policy = module.files.access_policy_json
}

# The application's connection secret as modules/aurora creates it, and
# its value as the add-ons layer writes it (a generated password through a
# write-only argument).
resource "aws_secretsmanager_secret" "app" {
  name                    = "${local.name}/app/database"
  kms_key_id              = module.security.rds_kms_key_arn
  recovery_window_in_days = 0

  tags = { Name = "${local.name}-app-database" }
}

module "app_secret_value" {
  source = "../../modules/secret-value"

  secret_id = aws_secretsmanager_secret.app.id
  value = {
    engine   = "postgres"
    username = "palaver_app"
    host     = "palaver-emulator.cluster-abc.eu-west-1.rds.amazonaws.com"
    port     = "5432"
    dbname   = "palaver"
  }
}
