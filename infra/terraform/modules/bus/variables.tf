variable "name" {
  description = "Name prefix of every resource, e.g. `palaver-production`."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the broker."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the broker's nodes (one per AZ)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups (by a short name) whose members may connect: the cluster's nodes. No CIDR can be given."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "The project's KMS key for the broker's storage and its secret (the key External Secrets may decrypt with)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the broker's log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the broker's log group, in days."
  type        = number
  default     = 365
}

variable "engine_version" {
  description = "Valkey engine version."
  type        = string
  default     = "8.0"
}

variable "parameter_group_name" {
  description = "Parameter group of the engine version."
  type        = string
  default     = "default.valkey8"
}

variable "node_type" {
  description = "Node type of the primary and replicas."
  type        = string
  default     = "cache.t4g.small"
}

variable "replicas" {
  description = "Replicas besides the primary (each in another AZ): at least one, for the automatic Multi-AZ failover."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 5
    error_message = "replicas must be between 1 and 5 (automatic failover needs a replica)."
  }
}

variable "port" {
  description = "TCP port of the broker."
  type        = number
  default     = 6379
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type        = string
  default     = "sun:04:00-sun:05:00"
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots (0: none; the broker holds no truth, PostgreSQL does)."
  type        = number
  default     = 1
}

variable "secret_recovery_window_days" {
  description = "Days a deleted bus secret can still be restored: 0 or 7 to 30."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
