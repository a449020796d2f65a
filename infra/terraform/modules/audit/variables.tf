variable "name" {
  description = "Name prefix of the audit resources, e.g. `palaver`."
  type        = string
}

variable "retention_days" {
  description = "Days the audit bucket keeps trail and configuration files (Glacier after 90)."
  type        = number
  default     = 2557
}

variable "log_retention_days" {
  description = "Retention of the CloudTrail log group, in days."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
