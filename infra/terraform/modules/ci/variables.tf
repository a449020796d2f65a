variable "name" {
  description = "Name prefix of every resource, e.g. `palaver-production`."
  type        = string
}

variable "environment" {
  description = "Environment name: the GitHub environments `<environment>` (deploy) and `terraform-<environment>` (apply) trust the roles."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment must be a short lower-case name such as staging."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflow runs may assume the roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider (envs/account)."
  type        = string
}

variable "github_connection_arn" {
  description = "ARN of the AWS CodeConnections connection to GitHub (created once in the console, see the README) that registers the CodeBuild runner."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the environment's EKS cluster (the deploy role may describe it)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the image repository (envs/account) the deploy role may read."
  type        = string
}

variable "ecr_kms_key_arn" {
  description = "KMS key of the image repository."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the runner."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets the runner's builds are placed in (egress through the NAT gateways)."
  type        = list(string)
}

variable "logs_kms_key_arn" {
  description = "KMS key of the runner's log group and build artefacts."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the runner's log group, in days."
  type        = number
  default     = 365
}

variable "helm_values" {
  description = "Every Helm value of the release that comes from the infrastructure; stored in the release values parameter."
  type        = any
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
