variable "cluster_name" {
  description = "Name of the EKS cluster the add-ons are installed in."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster (passed to the controllers, which cannot read it from instance metadata)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "vpc_id" {
  description = "ID of the cluster's VPC (for the AWS Load Balancer Controller)."
  type        = string
}

variable "pod_identities" {
  description = "Pod Identity associations from the eks module's `pod_identities` output: the service accounts the releases must use."
  type = map(object({
    namespace       = string
    service_account = string
    role_arn        = string
  }))

  validation {
    condition     = alltrue([for k in ["cluster-autoscaler", "aws-load-balancer-controller", "external-secrets", "fluent-bit", "alertmanager"] : contains(keys(var.pod_identities), k)])
    error_message = "pod_identities must contain cluster-autoscaler, aws-load-balancer-controller, external-secrets, fluent-bit and alertmanager."
  }
}

variable "application_log_group_name" {
  description = "CloudWatch Logs group Fluent Bit ships container logs to (created by the eks module)."
  type        = string
}

variable "opensearch_endpoint" {
  description = "Host name of an OpenSearch domain endpoint (no scheme) that Fluent Bit also ships logs to; null for CloudWatch only."
  type        = string
  default     = null

  validation {
    condition     = var.opensearch_endpoint == null || can(regex("^[a-z0-9.-]+$", var.opensearch_endpoint))
    error_message = "opensearch_endpoint must be a bare host name, e.g. search-logs-abc.eu-west-1.es.amazonaws.com."
  }
}

variable "opensearch_index" {
  description = "OpenSearch index Fluent Bit writes to."
  type        = string
  default     = "palaver-logs"
}

variable "chart_versions" {
  description = "Pinned Helm chart versions; bump them here (one place) after reading each chart's changelog."
  type = object({
    cluster_autoscaler           = optional(string, "9.43.2")
    aws_load_balancer_controller = optional(string, "1.11.0")
    external_secrets             = optional(string, "0.20.1")
    kube_prometheus_stack        = optional(string, "67.4.0")
    fluent_bit                   = optional(string, "0.50.0")
  })
  default = {}

  # The application chart renders external-secrets.io/v1 (served from
  # 0.16.2); Fluent Bit reads EKS Pod Identity credentials from 4.0
  # (fluent/fluent-bit#10114), first shipped by chart 0.49.0.
  validation {
    condition = (
      can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.chart_versions.external_secrets)) &&
      (tonumber(split(".", var.chart_versions.external_secrets)[0]) > 0 ||
        tonumber(split(".", var.chart_versions.external_secrets)[1]) > 16 ||
      (tonumber(split(".", var.chart_versions.external_secrets)[1]) == 16 && tonumber(split(".", var.chart_versions.external_secrets)[2]) >= 2))
    )
    error_message = "chart_versions.external_secrets must be 0.16.2 or later: the application renders external-secrets.io/v1."
  }

  validation {
    condition     = tonumber(split(".", var.chart_versions.fluent_bit)[0]) > 0 || tonumber(split(".", var.chart_versions.fluent_bit)[1]) >= 49
    error_message = "chart_versions.fluent_bit must be 0.49.0 or later (Fluent Bit 4.0, the first with EKS Pod Identity credentials)."
  }
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples, e.g. `15d`."
  type        = string
  default     = "15d"

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.prometheus_retention))
    error_message = "prometheus_retention must be a Prometheus duration such as 15d."
  }
}

variable "prometheus_storage_size" {
  description = "Size of Prometheus' persistent volume, e.g. `50Gi`."
  type        = string
  default     = "50Gi"

  validation {
    condition     = can(regex("^[0-9]+(Gi|Ti)$", var.prometheus_storage_size))
    error_message = "prometheus_storage_size must be a Kubernetes quantity in Gi or Ti."
  }
}

variable "storage_class_name" {
  description = "Name of the encrypted gp3 StorageClass this module creates (the cluster's default) and every volume of the releases uses."
  type        = string
  default     = "gp3-encrypted"
}

variable "storage_kms_key_arn" {
  description = "KMS key ARN the StorageClass encrypts EBS volumes with."
  type        = string
}

variable "cluster_secret_store_name" {
  description = "Name of the ClusterSecretStore (AWS Secrets Manager) this module creates; the application's ExternalSecrets reference it."
  type        = string
  default     = "aws-secrets-manager"
}

variable "app_namespace" {
  description = "Namespace of the application, the only one allowed to use the ClusterSecretStore."
  type        = string
  default     = "palaver"
}

variable "alert_topic_arn" {
  description = "SNS topic Alertmanager's default receiver publishes to (modules/monitoring)."
  type        = string
}

variable "slack_webhook_secret_name" {
  description = "Optional Slack receiver for critical alerts: name of a Secret in `monitoring` with key `url` (the webhook URL, never in values); null for none."
  type        = string
  default     = null
}

variable "slack_channel" {
  description = "Slack channel of the optional Slack receiver."
  type        = string
  default     = "#palaver-alerts"
}
