# Inputs that only pass through to one module are validated there (see the
# module named in the description); this file validates what the platform
# itself requires of an environment.

#### Naming and placement

variable "name" {
  description = "Name of the environment's clusters and prefix of every other resource, e.g. `palaver-production`."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "name must be 4-40 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "azs" {
  description = "The three availability zones the environment spans; the database writer goes in the first."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3
    error_message = "azs must list exactly three availability zones."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the environment's VPC, /16 to /18 (modules/network); one per environment, never overlapping."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway shared by the three AZs (cheaper; an AZ outage takes egress down) instead of one per AZ."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every taggable resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}

#### Keys, edge and logging

variable "kms_admin_role_arns" {
  description = "IAM roles allowed to administer the KMS keys (modules/security)."
  type        = list(string)
  default     = []
}

variable "kms_deletion_window_days" {
  description = "Waiting period of a scheduled KMS key deletion, 7 to 30 days (modules/security)."
  type        = number
  default     = 30
}

variable "host_name" {
  description = "Public host name of the environment (e.g. `chat.example.com`): its ACM certificate is requested or looked up (modules/certificate), and the release's Ingress host (`ingress.hosts`) is this name, through helm_values."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.host_name))
    error_message = "host_name must be a fully qualified lower-case DNS name (no scheme, path or trailing dot)."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of host_name: the certificate is requested and DNS-validated there; null: the issued certificate of host_name is looked up (modules/certificate)."
  type        = string
  default     = null
}

variable "max_body_bytes" {
  description = "Largest request body the application accepts (crates/palaver/src/config.rs --max-body-bytes): the WAF's body-size rule follows it (modules/security)."
  type        = number
  default     = 65536
}

variable "max_file_bytes" {
  description = "Largest uploaded file the application accepts (--max-file-bytes, 25 MiB): the release's fileStore.maxFileBytes and the WAF's upload-route limit (modules/security)."
  type        = number
  default     = 26214400
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes above which the WAF blocks (modules/security)."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch Logs group of the environment, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365
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

variable "node_groups" {
  description = "Managed node groups of the cluster, by name (modules/eks)."
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
}

variable "opensearch_instance_count" {
  description = "Data nodes of the log search domain (modules/monitoring)."
  type        = number
  default     = 2
}

variable "opensearch_admin_role_arn" {
  description = "IAM role that is the log search domain's master user; null: the CI apply role."
  type        = string
  default     = null
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
}

variable "aurora_max_capacity" {
  description = "Maximum Aurora Serverless v2 capacity (ACUs)."
  type        = number
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

#### Uploaded files (issue 18)

variable "files_prefix" {
  description = "Key prefix of the files bucket the application writes under (modules/files)."
  type        = string
  default     = "files"
}

variable "files_noncurrent_version_days" {
  description = "Days a deleted or overwritten file stays recoverable (modules/files)."
  type        = number
  default     = 30
}

#### Protection (defaults protect; throw-away environments opt out)

variable "deletion_protection" {
  description = "The database refuses deletion."
  type        = bool
  default     = true
}

variable "files_force_destroy" {
  description = "Let `terraform destroy` delete the files bucket with the files in it (throw-away environments only)."
  type        = bool
  default     = false
}

variable "skip_final_snapshot" {
  description = "Delete the database without a final snapshot (throw-away environments only)."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Days the database's automated backups and daily AWS Backup recovery points are kept, 1 to 35 (modules/aurora)."
  type        = number
  default     = 30
}

variable "performance_insights_retention_days" {
  description = "Performance Insights retention: 7 (free tier), or a multiple of 31 up to 731 (modules/aurora)."
  type        = number
  default     = 31
}

variable "app_secret_recovery_window_days" {
  description = "Days a deleted application secret can still be restored: 0 (at once) or 7 to 30 (modules/aurora)."
  type        = number
  default     = 30
}

#### Environment, CI and release

variable "environment" {
  description = "Environment name (GitHub environments `<environment>` and `terraform-<environment>`), e.g. staging."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows deploy this environment."
  type        = string
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub OIDC provider (envs/account output)."
  type        = string
}

variable "github_connection_arn" {
  description = "ARN of the CodeConnections connection to GitHub that registers the deploy runner (modules/ci)."
  type        = string
}

variable "ecr_repository_url" {
  description = "URL of the image repository (envs/account output), the release's image.repository."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the image repository (envs/account output)."
  type        = string
}

variable "ecr_kms_key_arn" {
  description = "KMS key of the image repository (envs/account output)."
  type        = string
}

variable "cluster_secret_store_name" {
  description = "Name of the ClusterSecretStore the add-ons layer creates (modules/addons) and the release reads from."
  type        = string
  default     = "aws-secrets-manager"
}


variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (modules/monitoring)."
  type        = list(string)
  default     = []
}

variable "runbook_base_url" {
  description = "URL of docs/incident-response.md, linked from every alarm."
  type        = string
  default     = "https://github.com/palaver/palaver/blob/main/docs/incident-response.md"
}

variable "availability_slo" {
  description = "Availability SLO of the CloudWatch error-ratio alarm (modules/monitoring)."
  type        = number
  default     = 0.995
}


variable "app_password_version" {
  description = "Version of the application's generated database password: increase to rotate (the add-ons layer writes the new value, the next release's bootstrap hook sets it)."
  type        = number
  default     = 1
}

#### Accounts and the fan-out broker

variable "identity_enabled" {
  description = "Create the Cognito user pool and app client (modules/identity) whose issuer and client id the release's OIDC settings get."
  type        = bool
  default     = false
}

variable "identity_callback_urls" {
  description = "Callback URLs of the web UI's app client (https://<host>/...)."
  type        = list(string)
  default     = []
}

variable "identity_logout_urls" {
  description = "Logout URLs of the web UI's app client."
  type        = list(string)
  default     = []
}

variable "identity_domain_prefix" {
  description = "Prefix of the hosted-UI domain; null for none."
  type        = string
  default     = null
}

variable "identity_self_sign_up" {
  description = "Whether people may create their own account in the user pool."
  type        = bool
  default     = false
}

variable "bus_enabled" {
  description = "Create the Valkey broker (modules/bus) and switch the release's bus to it (bus.redis.enabled)."
  type        = bool
  default     = false
}

variable "bus_node_type" {
  description = "Node type of the broker."
  type        = string
  default     = "cache.t4g.small"
}
