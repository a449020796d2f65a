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

output "certificate_arn" {
  description = "ACM certificate ARN for the `alb.ingress.kubernetes.io/certificate-arn` ingress annotation (the input, passed through)."
  value       = var.certificate_arn
}

output "alb_ingress_annotations" {
  description = "The ingress annotations that attach the WAF and the certificate to the ALB, ready to paste into the Helm values."
  value       = module.security.alb_ingress_annotations
}
