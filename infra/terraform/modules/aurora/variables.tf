#### Placement

variable "name" {
  description = "Cluster identifier and name prefix for every resource of this module, e.g. `palaver-production`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "name must be 4-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Isolated database subnet IDs, one per AZ."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least two subnets in different AZs."
  }
}

variable "availability_zones" {
  description = "AZs of the instances: the writer goes in the first, readers in the following ones (round robin)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must list at least two distinct AZs, so the reader is not in the writer's AZ."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 5432, by a static label (e.g. `{ eks_nodes = \"sg-...\" }`). No CIDR is ever allowed."
  type        = map(string)

  validation {
    condition     = length(var.allowed_security_group_ids) > 0
    error_message = "allowed_security_group_ids must name at least one security group."
  }
}

#### Engine and capacity

variable "engine_version" {
  description = "Aurora PostgreSQL engine version, e.g. `16.6`."
  type        = string
  default     = "16.6"

  validation {
    condition     = can(regex("^1[3-9]\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be an Aurora PostgreSQL version 13 or later, like 16.6."
  }
}

variable "database_name" {
  description = "Name of the database created with the cluster."
  type        = string
  default     = "palaver"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lower-case PostgreSQL identifier."
  }
}

variable "master_username" {
  description = "Name of the master user. Its password is generated, stored and rotated by RDS in Secrets Manager."
  type        = string
  default     = "palaver_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be a lower-case PostgreSQL identifier and not a reserved name."
  }
}

variable "min_capacity" {
  description = "Minimum Serverless v2 capacity in ACUs (0.5 steps; 0 lets an idle cluster pause on engines that support it)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.min_capacity >= 0 && var.min_capacity <= 256 && floor(var.min_capacity * 2) == var.min_capacity * 2
    error_message = "min_capacity must be between 0 and 256 in steps of 0.5."
  }
}

variable "max_capacity" {
  description = "Maximum Serverless v2 capacity in ACUs (0.5 steps), at least min_capacity."
  type        = number
  default     = 8

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 256 && floor(var.max_capacity * 2) == var.max_capacity * 2
    error_message = "max_capacity must be between 1 and 256 in steps of 0.5."
  }

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "max_capacity must be at least min_capacity."
  }
}

variable "reader_count" {
  description = "Number of reader instances, placed in AZs other than the writer's first."
  type        = number
  default     = 1

  validation {
    condition     = var.reader_count >= 1 && var.reader_count <= 15 && floor(var.reader_count) == var.reader_count
    error_message = "reader_count must be a whole number from 1 to 15."
  }
}

variable "log_min_duration_ms" {
  description = "Statements slower than this many milliseconds are logged (-1 turns it off)."
  type        = number
  default     = 1000

  validation {
    condition     = var.log_min_duration_ms >= -1
    error_message = "log_min_duration_ms must be -1 or more."
  }
}

#### Encryption and secrets

variable "kms_key_arn" {
  description = "Customer-managed KMS key ARN for storage, Performance Insights, backups and the Secrets Manager secrets."
  type        = string
}

variable "master_password_rotation_days" {
  description = "Days between automatic rotations of the RDS-managed master password."
  type        = number
  default     = 30

  validation {
    condition     = var.master_password_rotation_days >= 1 && var.master_password_rotation_days <= 365
    error_message = "master_password_rotation_days must be between 1 and 365."
  }
}

variable "app_secret_recovery_window_days" {
  description = "Days a deleted application secret can still be restored (0 deletes at once, for throw-away environments)."
  type        = number
  default     = 30

  validation {
    condition     = var.app_secret_recovery_window_days == 0 || (var.app_secret_recovery_window_days >= 7 && var.app_secret_recovery_window_days <= 30)
    error_message = "app_secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

#### Protection and backups

variable "deletion_protection" {
  description = "Refuse to delete the cluster (on for production)."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete without a final snapshot (only for throw-away environments such as staging)."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Days automated backups (point-in-time recovery) are kept, and days the AWS Backup daily recovery points are kept."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "preferred_backup_window" {
  description = "Daily UTC window for automated backups, hh24:mi-hh24:mi; must not overlap the maintenance window."
  type        = string
  default     = "02:00-03:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", var.preferred_backup_window))
    error_message = "preferred_backup_window must look like 02:00-03:00."
  }
}

variable "preferred_maintenance_window" {
  description = "Weekly UTC maintenance window, ddd:hh24:mi-ddd:hh24:mi."
  type        = string
  default     = "sun:04:00-sun:05:00"

  validation {
    condition     = can(regex("^(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]$", var.preferred_maintenance_window))
    error_message = "preferred_maintenance_window must look like sun:04:00-sun:05:00."
  }
}

#### Monitoring and logs

variable "performance_insights_retention_days" {
  description = "Performance Insights retention: 7 (free tier), or a multiple of 31 up to 731."
  type        = number
  default     = 7

  validation {
    condition     = contains(concat([7, 731], [for months in range(1, 24) : months * 31]), var.performance_insights_retention_days)
    error_message = "performance_insights_retention_days must be 7, 31 times 1 to 23 months, or 731."
  }
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "monitoring_interval must be one of 1, 5, 10, 15, 30, 60."
  }
}

variable "logs_kms_key_arn" {
  description = "KMS key ARN that encrypts the exported PostgreSQL log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "app_username" {
  description = "Database role of the application (created by the chart's bootstrap hook with the password in the application secret); never the master user."
  type        = string
  default     = "palaver_app"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.app_username)) && var.app_username != var.master_username
    error_message = "app_username must be a lower-case PostgreSQL identifier other than the master user."
  }
}


