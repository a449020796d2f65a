# The inputs given at apply time (CI sets cluster_public_access_cidrs through
# TF_VAR_cluster_public_access_cidrs); every other value of the environment
# is in main.tf. modules/platform validates them.

variable "certificate_arn" {
  description = "ACM certificate ARN of the public host name, for the ALB's HTTPS listener."
  type        = string
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
