#### Placement

variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "azs" {
  description = "The three availability zones the environment spans."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    condition     = length(var.azs) == 3
    error_message = "azs must list exactly three availability zones."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the environment's VPC."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

#### Cluster

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane."
  type        = string
  default     = "1.31"
}

variable "cluster_public_access_cidrs" {
  description = "CIDRs (operators' VPN or office egress) allowed to reach the public API endpoint; [] keeps the API private."
  type        = list(string)

  validation {
    condition     = !contains(var.cluster_public_access_cidrs, "0.0.0.0/0")
    error_message = "The API endpoint is never open to 0.0.0.0/0."
  }
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

variable "node_groups" {
  description = "Managed node groups of the cluster (see modules/eks)."
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
  default = {
    general = {
      instance_types = ["m6i.large", "m6a.large"]
      min_size       = 3
      max_size       = 12
      desired_size   = 3
      labels         = { workload = "general" }
    }
  }
}

#### Database

variable "aurora_engine_version" {
  description = "Aurora PostgreSQL engine version."
  type        = string
  default     = "16.6"
}

variable "aurora_min_capacity" {
  description = "Minimum Aurora Serverless v2 capacity (ACUs)."
  type        = number
  default     = 2
}

variable "aurora_max_capacity" {
  description = "Maximum Aurora Serverless v2 capacity (ACUs)."
  type        = number
  default     = 32
}

variable "aurora_reader_count" {
  description = "Number of Aurora readers (each in another AZ than the writer)."
  type        = number
  default     = 1
}

variable "app_db_iam_username" {
  description = "Database user the application logs in as with IAM authentication; null when it uses the password in its secret."
  type        = string
  default     = null
}

#### Edge and logging

variable "certificate_arn" {
  description = "ACM certificate ARN of the public host name, for the ALB's HTTPS listener."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes above which the WAF blocks."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch Logs group of the environment, in days."
  type        = number
  default     = 365
}

variable "opensearch_domain_arn" {
  description = "ARN of an OpenSearch domain Fluent Bit may also write to; null for CloudWatch Logs only."
  type        = string
  default     = null
}
