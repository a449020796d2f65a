variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the CI roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "repository_name" {
  description = "Name of the ECR image repository."
  type        = string
  default     = "palaver"
}

variable "state_bucket" {
  description = "S3 bucket of the Terraform state (the plan role may read it)."
  type        = string
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
