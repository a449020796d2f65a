# The inputs given at apply time (CI sets cluster_public_access_cidrs through
# TF_VAR_cluster_public_access_cidrs); every other value of the environment
# is in main.tf. modules/platform validates them.

variable "host_name" {
  description = "Public host name of production (e.g. `chat.example.com`): the ALB's certificate is requested (with route53_zone_id) or looked up for it, and the release's Ingress host is this name (through the SSM parameter)."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of host_name, where the certificate's DNS validation record is written; null: an issued ACM certificate of host_name is looked up."
  type        = string
  default     = null
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs (operators' VPN or office egress) allowed to reach the public API endpoint; [] keeps the API private."
  type        = list(string)
}

variable "cluster_admin_role_arns" {
  description = "IAM roles given cluster-admin (include the CI role that applies the add-ons layer)."
  type        = list(string)
  default     = []
}

variable "kms_admin_role_arns" {
  description = "IAM roles allowed to administer the KMS keys."
  type        = list(string)
  default     = []
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows deploy this environment (GitHub variable GITHUB_REPOSITORY is the default in CI)."
  type        = string
}

variable "github_connection_arn" {
  description = "ARN of the CodeConnections connection to GitHub that registers the deploy runner (created once in the console)."
  type        = string
}

variable "alert_emails" {
  description = "E-mail addresses that receive the environment's alerts."
  type        = list(string)
  default     = []
}

variable "state_bucket" {
  description = "S3 bucket of the Terraform state (the account layer's state is read from it)."
  type        = string
  default     = "palaver-terraform-state"
}

variable "state_region" {
  description = "Region of the state bucket."
  type        = string
  default     = "eu-west-1"
}

