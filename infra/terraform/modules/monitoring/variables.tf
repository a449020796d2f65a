variable "name" {
  description = "Name prefix of every resource, e.g. `palaver-production`."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the alert topic (its policy lets CloudWatch alarms and SNS use it)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the CloudWatch Logs groups and of the OpenSearch domain's storage."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the OpenSearch log groups, in days."
  type        = number
  default     = 365
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each confirms the first message); [] for none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", e))])
    error_message = "alert_emails must be e-mail addresses."
  }
}

variable "runbook_base_url" {
  description = "URL of docs/incident-response.md, which the alarm descriptions link to (with an anchor per incident)."
  type        = string
}

variable "availability_slo" {
  description = "Share of requests that must not fail with a 5xx, e.g. 0.995."
  type        = number
  default     = 0.995

  validation {
    condition     = var.availability_slo > 0.9 && var.availability_slo < 1
    error_message = "availability_slo must be between 0.9 and 1."
  }
}

variable "application_log_group_name" {
  description = "CloudWatch Logs group of the application's container logs (metric filters read it)."
  type        = string
}

variable "web_acl_name" {
  description = "Name of the WAFv2 web ACL (the WebACL dimension of its metrics)."
  type        = string
}

variable "waf_blocked_threshold" {
  description = "WAF blocked requests per 5 minutes above which the alarm fires."
  type        = number
  default     = 500
}

variable "db_cluster_identifier" {
  description = "Aurora cluster identifier (the dimension of its capacity metric)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the OpenSearch domain."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per AZ; the domain uses as many as it has nodes (up to three)."
  type        = list(string)
}

variable "opensearch_domain_name" {
  description = "Name of the OpenSearch domain (3-28 lower-case letters, digits and hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,27}$", var.opensearch_domain_name))
    error_message = "opensearch_domain_name must be 3-28 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "opensearch_engine_version" {
  description = "OpenSearch engine version."
  type        = string
  default     = "OpenSearch_2.17"
}

variable "opensearch_instance_type" {
  description = "Instance type of the data nodes."
  type        = string
  default     = "t3.medium.search"
}

variable "opensearch_instance_count" {
  description = "Data nodes (spread over as many AZs, up to three)."
  type        = number
  default     = 2
}

variable "opensearch_volume_size_gib" {
  description = "gp3 volume per data node, in GiB."
  type        = number
  default     = 50
}

variable "opensearch_client_security_group_ids" {
  description = "Security groups (by a short name) allowed to reach the domain on 443: the cluster's nodes, where Fluent Bit runs."
  type        = map(string)
}

variable "opensearch_writer_role_arns" {
  description = "IAM roles allowed to write logs (Fluent Bit's Pod Identity role)."
  type        = list(string)
}

variable "opensearch_admin_role_arn" {
  description = "IAM role that is the domain's fine-grained-access master user (maps the writer roles to OpenSearch roles, reads Dashboards)."
  type        = string
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
