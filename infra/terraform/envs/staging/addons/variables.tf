variable "state_bucket" {
  description = "S3 bucket holding the platform layer's state (the bucket of ../versions.tf)."
  type        = string
  default     = "palaver-terraform-state"
}

variable "state_region" {
  description = "Region of the state bucket."
  type        = string
  default     = "eu-west-1"
}

variable "opensearch_endpoint" {
  description = "Host name of an OpenSearch domain Fluent Bit also ships logs to; null for CloudWatch Logs only."
  type        = string
  default     = null
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples."
  type        = string
  default     = "7d"
}

variable "prometheus_storage_size" {
  description = "Size of Prometheus' persistent volume."
  type        = string
  default     = "20Gi"
}
