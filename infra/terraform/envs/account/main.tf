/**
 * Account layer, applied once per AWS account by an administrator before
 * the environments (README, Deploy): the GitHub OIDC provider, the image
 * repository and the account-level CI roles (modules/registry), and the
 * audit baseline (modules/audit). The environments read its outputs from
 * the state bucket.
 */

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "palaver"
      ManagedBy = "terraform"
      Stack     = "infra/terraform/envs/account"
    }
  }
}

module "registry" {
  source = "../../modules/registry"

  github_repository = var.github_repository
  state_bucket      = var.state_bucket
}

module "audit" {
  source = "../../modules/audit"

  name = "palaver"
}
