variable "region" {
  description = "Home region of the account's shared resources."
  type        = string
  default     = "eu-west-1"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the CI roles."
  type        = string
}

variable "state_bucket" {
  description = "S3 bucket of the Terraform state (bootstrapped by hand first, README)."
  type        = string
  default     = "palaver-terraform-state"
}
