terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }

  # State lives in a versioned, encrypted S3 bucket created once per account
  # by the platform team; `use_lockfile` takes an S3 lock object per run
  # (Terraform 1.10+), so two applies never interleave. Another bucket can be
  # chosen at init: terraform init -backend-config="bucket=..."
  backend "s3" {
    bucket       = "palaver-terraform-state"
    key          = "production/platform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
