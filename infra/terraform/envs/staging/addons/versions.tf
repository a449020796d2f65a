terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
  }

  # Same bucket as the platform layer, its own key and lock.
  backend "s3" {
    bucket       = "palaver-terraform-state"
    key          = "staging/addons.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
