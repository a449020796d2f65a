# What the Helm values (deploy/helm, deploy/kustomize overlays), the add-ons
# layer and the operators need from an environment.

#### Placement and network

output "region" {
  description = "AWS region of the environment."
  value       = data.aws_region.current.name
}

output "vpc_id" {
  description = "ID of the VPC (for the AWS Load Balancer Controller)."
  value       = module.network.vpc_id
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways (one per AZ, or one with `single_nat_gateway`): the egress addresses to allow-list elsewhere."
  value       = module.network.nat_public_ips
}

#### Cluster

output "cluster_name" {
  description = "Name of the EKS cluster (kubeconfig: aws eks update-kubeconfig --name <this>)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "pod_identities" {
  description = "Pod Identity associations by workload (namespace, service account, role ARN); the add-ons layer installs the releases under these service accounts."
  value       = module.eks.pod_identities
}

output "application_log_group_name" {
  description = "CloudWatch Logs group of the application's container logs."
  value       = module.eks.application_log_group_name
}

#### Database

output "db_endpoint" {
  description = "Aurora writer endpoint (host of the application's DATABASE_URL)."
  value       = module.aurora.endpoint
}

output "db_reader_endpoint" {
  description = "Aurora reader endpoint."
  value       = module.aurora.reader_endpoint
}

output "db_port" {
  description = "PostgreSQL port."
  value       = module.aurora.port
}

output "db_name" {
  description = "Application database name."
  value       = module.aurora.database_name
}

output "db_master_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master credentials (bootstrap job only)."
  value       = module.aurora.master_user_secret_arn
}

output "app_secret_arn" {
  description = "Secrets Manager ARN of the application's connection secret, for the ExternalSecret in the Helm values."
  value       = module.aurora.app_secret_arn
}

output "deletion_protection" {
  description = "Whether the database refuses deletion."
  value       = module.aurora.deletion_protection
}

output "final_snapshot_identifier" {
  description = "Snapshot taken when the database is deleted; null when none is taken."
  value       = module.aurora.final_snapshot_identifier
}

#### Edge

output "waf_web_acl_arn" {
  description = "WAFv2 web ACL ARN for the `alb.ingress.kubernetes.io/wafv2-acl-arn` ingress annotation."
  value       = module.security.web_acl_arn
}

output "host_name" {
  description = "Public host name of the environment (the release's Ingress host, the certificate's domain)."
  value       = var.host_name
}

output "certificate_arn" {
  description = "ACM certificate ARN of host_name (requested and DNS-validated, or looked up: modules/certificate), for the `alb.ingress.kubernetes.io/certificate-arn` ingress annotation."
  value       = module.certificate.arn
}

output "alb_ingress_annotations" {
  description = "The ingress annotations that attach the WAF and the certificate to the ALB, ready to paste into the Helm values."
  value       = module.security.alb_ingress_annotations
}

#### Release, CI and monitoring

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (the release's trusted proxies and ingress source)."
  value       = var.vpc_cidr
}

output "app_secret_name" {
  description = "Name of the application's connection secret (the ExternalSecret's key)."
  value       = module.aurora.app_secret_name
}

output "cluster_secret_store_name" {
  description = "Name of the ClusterSecretStore the add-ons layer creates."
  value       = var.cluster_secret_store_name
}

output "helm_values" {
  description = "Every Helm value of the release that comes from the infrastructure (also in the SSM parameter `helm_values_parameter`)."
  value       = local.helm_values
}

output "helm_values_parameter" {
  description = "SSM parameter the deploy workflow reads the release's infrastructure values from (GitHub variable HELM_VALUES_PARAMETER)."
  value       = module.ci.helm_values_parameter
}

output "ci_apply_role_arn" {
  description = "Role of the GitHub environment terraform-<env> (variable AWS_TERRAFORM_ROLE_ARN)."
  value       = module.ci.apply_role_arn
}

output "ci_deploy_role_arn" {
  description = "Role of the GitHub environment <env> (variable AWS_DEPLOY_ROLE_ARN)."
  value       = module.ci.deploy_role_arn
}

output "ci_runner_project_name" {
  description = "CodeBuild runner project of the deploy job (variable RUNNER_PROJECT)."
  value       = module.ci.runner_project_name
}

output "alert_topic_arn" {
  description = "SNS topic of every alert (Alertmanager's receiver)."
  value       = module.monitoring.alert_topic_arn
}

output "opensearch_endpoint" {
  description = "VPC endpoint host of the log search domain (Fluent Bit's opensearch output)."
  value       = module.monitoring.opensearch_endpoint
}

output "opensearch_dashboards_endpoint" {
  description = "OpenSearch Dashboards of the log search domain."
  value       = module.monitoring.opensearch_dashboards_endpoint
}

output "files_bucket_name" {
  description = "S3 bucket of the uploaded files (modules/files)."
  value       = module.files.bucket_name
}

output "file_store_url" {
  description = "The api role's --file-store (fileStore.url): s3://<bucket>/<prefix>."
  value       = module.files.url
}

output "storage_kms_key_arn" {
  description = "KMS key of the cluster's encrypted gp3 volumes (the add-ons layer's StorageClass)."
  value       = module.security.eks_kms_key_arn
}

output "app_connection" {
  description = "Non-secret fields of the application's connection secret (the add-ons layer writes them with a generated password)."
  value       = module.aurora.app_connection
}

output "app_password_version" {
  description = "Version of the application's generated password; the add-ons layer writes a new one when it increases."
  value       = var.app_password_version
}

output "oidc_issuer" {
  description = "OIDC issuer URL of the user pool (auth.oidc.issuer), or null without one."
  value       = one(module.identity[*].issuer_url)
}

output "oidc_client_id" {
  description = "App client id of the web UI (auth.oidc.audience), or null without a user pool."
  value       = one(module.identity[*].client_id)
}

output "bus_secret_arn" {
  description = "Secrets Manager ARN of the broker's secret (bus.redis.key), or null without a broker."
  value       = one(module.bus[*].secret_arn)
}
