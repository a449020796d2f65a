#### Cluster

variable "name" {
  description = "Name of the EKS cluster, also the prefix of its IAM roles and log groups."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "name must be 4-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, e.g. `1.31`."
  type        = string
  default     = "1.31"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.31."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the cluster runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnet IDs (one per AZ) for the control-plane ENIs and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least two subnets in different AZs."
  }
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint (operators' VPN or office egress). Empty disables the public endpoint; the private endpoint is always on."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be valid IPv4 CIDRs, and 0.0.0.0/0 is not allowed."
  }
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed KMS key ARN for envelope encryption of Kubernetes secrets."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key ARN that encrypts the control-plane and application log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the control-plane and application log groups, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts."
  }
}

variable "admin_role_arns" {
  description = "IAM role ARNs given cluster-admin through EKS access entries (the CI role that applies the add-ons layer belongs here)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "admin_role_arns must be IAM role ARNs."
  }
}

#### Nodes

variable "namespace_deploy_role_arns" {
  description = "IAM roles (the CI deploy role), by a short name known at plan time, given Kubernetes edit rights in app_namespace only, through an access entry."
  type        = map(string)
  default     = {}
}

variable "ci_admin_role_arns" {
  description = "IAM roles created in the same run (the CI apply role, which installs the add-ons), by a short name known at plan time, given cluster-admin."
  type        = map(string)
  default     = {}
}

variable "api_client_security_group_ids" {
  description = "Security groups (by a short name) whose members may reach the private API endpoint on 443, e.g. the CI runners of modules/ci."
  type        = map(string)
  default     = {}
}

variable "node_groups" {
  description = "Managed node groups, by name. Each spans all subnets; the cluster autoscaler moves desired_size between min_size and max_size."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 50)
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = optional(string)
      effect = string
    })), [])
  }))

  validation {
    condition     = length(var.node_groups) > 0
    error_message = "node_groups must define at least one node group."
  }

  validation {
    condition = alltrue([
      for ng in values(var.node_groups) :
      ng.min_size >= 0 && ng.max_size >= 1 && ng.min_size <= ng.desired_size && ng.desired_size <= ng.max_size
    ])
    error_message = "Every node group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = alltrue([for ng in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], ng.capacity_type)])
    error_message = "capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    condition     = alltrue([for ng in values(var.node_groups) : length(ng.instance_types) > 0 && ng.disk_size_gib >= 20])
    error_message = "Every node group needs at least one instance type and a disk of at least 20 GiB."
  }

  validation {
    condition = alltrue(flatten([
      for ng in values(var.node_groups) : [for t in ng.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)]
    ]))
    error_message = "Taint effects must be NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."
  }
}

variable "addon_versions" {
  description = "Pinned EKS add-on versions by add-on name (vpc-cni, coredns, kube-proxy, aws-ebs-csi-driver, eks-pod-identity-agent); an add-on left out gets the default version for the cluster's Kubernetes version."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.addon_versions) : contains(["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"], k)])
    error_message = "addon_versions keys must be among vpc-cni, coredns, kube-proxy, aws-ebs-csi-driver, eks-pod-identity-agent."
  }
}

#### Workload identities

variable "app_secret_arn" {
  description = "ARN of the application's Secrets Manager secret: the only secret External Secrets may read."
  type        = string
}

variable "app_secret_kms_key_arn" {
  description = "KMS key ARN that encrypts the application's secret (External Secrets may decrypt with it only through Secrets Manager, only for that secret)."
  type        = string
}

variable "extra_readable_secret_arns" {
  description = "Further Secrets Manager secrets (encrypted with app_secret_kms_key_arn) External Secrets may read: the database master secret for the bootstrap hook, the bus secret."
  type        = list(string)
  default     = []
}

variable "alert_topic_arn" {
  description = "SNS topic Alertmanager publishes to (its Pod Identity role may publish there only)."
  type        = string
}

variable "alert_topic_kms_key_arn" {
  description = "KMS key that encrypts the alert topic."
  type        = string
}

variable "app_namespace" {
  description = "Kubernetes namespace the application runs in."
  type        = string
  default     = "palaver"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.app_namespace))
    error_message = "app_namespace must be a valid Kubernetes namespace name."
  }
}

variable "app_service_account" {
  description = "Kubernetes service account of the application pods."
  type        = string
  default     = "palaver"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.app_service_account))
    error_message = "app_service_account must be a valid Kubernetes service account name."
  }
}

variable "api_service_account" {
  description = "Kubernetes service account of the api role's pods (the chart's `<fullname>-api`), the only one whose Pod Identity gets api_policy_jsons."
  type        = string
  default     = "palaver-api"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.api_service_account))
    error_message = "api_service_account must be a valid Kubernetes service account name."
  }
}

variable "api_policy_jsons" {
  description = "IAM policy documents of the api role's Pod Identity, by name (static keys; e.g. `files` = modules/files' access_policy_json). Empty and no db_iam_auth: no api role."
  type        = map(string)
  default     = {}
}

variable "db_iam_auth" {
  description = "When set, the application gets a Pod Identity role allowed only `rds-db:connect` as `username` on the Aurora cluster with resource ID `cluster_resource_id`."
  type = object({
    cluster_resource_id = string
    username            = string
  })
  default = null
}

variable "opensearch_domain_arn" {
  description = "ARN of an OpenSearch domain Fluent Bit also ships logs to; null when logs go to CloudWatch only."
  type        = string
  default     = null

  validation {
    condition     = var.opensearch_domain_arn == null || can(regex("^arn:aws[a-z-]*:es:[a-z0-9-]+:[0-9]{12}:domain/.+$", var.opensearch_domain_arn))
    error_message = "opensearch_domain_arn must be an OpenSearch domain ARN."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
