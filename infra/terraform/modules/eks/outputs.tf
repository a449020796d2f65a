output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64-encoded CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_version" {
  description = "Kubernetes version of the control plane."
  value       = aws_eks_cluster.this.version
}

output "node_security_group_id" {
  description = "The EKS cluster security group, attached to the control plane and every managed node: the source the database allows."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "node_role_arn" {
  description = "ARN of the IAM role of the managed nodes."
  value       = aws_iam_role.node.arn
}

output "node_group_names" {
  description = "Names of the managed node groups."
  value       = [for ng in aws_eks_node_group.this : ng.node_group_name]
}

output "pod_identities" {
  description = "Every Pod Identity association, by workload: namespace, service account and IAM role ARN (the Helm releases use the same service account names)."
  value = {
    for name, p in local.pod_identities : name => {
      namespace       = p.namespace
      service_account = p.service_account
      role_arn        = aws_iam_role.pod_identity[name].arn
    }
  }
}

output "application_log_group_name" {
  description = "CloudWatch Logs group Fluent Bit ships container logs to."
  value       = aws_cloudwatch_log_group.application.name
}

output "cluster_log_group_name" {
  description = "CloudWatch Logs group of the control-plane logs."
  value       = aws_cloudwatch_log_group.cluster.name
}
