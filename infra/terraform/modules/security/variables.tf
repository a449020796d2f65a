variable "name" {
  description = "Name prefix for every resource of this module, e.g. `palaver-production`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "name must be 4-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "key_administrator_arns" {
  description = "IAM role ARNs allowed to administer (not use) the KMS keys, in addition to the account root that IAM policies delegate through."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.key_administrator_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "key_administrator_arns must be IAM role ARNs."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled KMS key deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes above which the WAF blocks that IP (answering 429)."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit >= 100 && var.waf_rate_limit <= 2000000000
    error_message = "waf_rate_limit must be between 100 and 2,000,000,000 (the WAFv2 limits)."
  }
}

variable "max_body_bytes" {
  description = "Largest request body the application accepts (its --max-body-bytes, 64 KiB by default); the WAF answers 413 to a larger Content-Length and never blocks a smaller body for its size."
  type        = number
  default     = 65536

  validation {
    condition     = var.max_body_bytes >= 1024 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be a whole number of at least 1024."
  }
}

variable "max_file_bytes" {
  description = "Largest uploaded file the application accepts (its --max-file-bytes, 25 MiB by default): the WAF lets bodies up to this size through on the upload route (POST /api/v1/rooms/{room}/files) only, and answers 413 to a larger Content-Length there."
  type        = number
  default     = 26214400

  validation {
    condition     = var.max_file_bytes >= 1024 && floor(var.max_file_bytes) == var.max_file_bytes
    error_message = "max_file_bytes must be a whole number of at least 1024."
  }
}

variable "waf_common_rule_overrides" {
  description = "Further rules of AWSManagedRulesCommonRuleSet to switch to count mode (SizeRestrictions_BODY always is: the application's own limit, max_body_bytes, is larger)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the WAF log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts."
  }
}

variable "certificate_arn" {
  description = "ACM certificate ARN for the ALB's HTTPS listener; added to the ingress annotations when set."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
