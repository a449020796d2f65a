output "kms_key_arns" {
  description = "ARN of every customer-managed KMS key, by purpose (`eks`, `rds`, `logs`, `alerts`, `files`)."
  value       = { for purpose, key in aws_kms_key.this : purpose => key.arn }
}

output "eks_kms_key_arn" {
  description = "KMS key ARN for EKS envelope encryption of Kubernetes secrets."
  value       = aws_kms_key.this["eks"].arn
}

output "rds_kms_key_arn" {
  description = "KMS key ARN for Aurora storage, Performance Insights, backups and the database secrets."
  value       = aws_kms_key.this["rds"].arn
}

output "logs_kms_key_arn" {
  description = "KMS key ARN for CloudWatch Logs log groups."
  value       = aws_kms_key.this["logs"].arn
}

output "web_acl_arn" {
  description = "ARN of the regional WAFv2 web ACL to attach to the application load balancer."
  value       = aws_wafv2_web_acl.this.arn
}

output "web_acl_log_group_name" {
  description = "CloudWatch Logs group receiving the WAF logs."
  value       = aws_cloudwatch_log_group.waf.name
}

output "alb_ingress_annotations" {
  description = "AWS Load Balancer Controller ingress annotations that attach the WAF (and the certificate, when given) to the ALB."
  value = merge(
    {
      "alb.ingress.kubernetes.io/wafv2-acl-arn" = aws_wafv2_web_acl.this.arn
      "alb.ingress.kubernetes.io/ssl-policy"    = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    },
    var.certificate_arn == null ? {} : {
      "alb.ingress.kubernetes.io/certificate-arn" = var.certificate_arn
      "alb.ingress.kubernetes.io/listen-ports"    = "[{\"HTTPS\":443}]"
    },
  )
}

output "alerts_kms_key_arn" {
  description = "KMS key ARN of the alert topic."
  value       = aws_kms_key.this["alerts"].arn
}

output "web_acl_name" {
  description = "Name of the WAFv2 web ACL (the WebACL dimension of its CloudWatch metrics)."
  value       = aws_wafv2_web_acl.this.name
}

output "files_kms_key_arn" {
  description = "KMS key ARN of the uploaded files' bucket (SSE-KMS, modules/files)."
  value       = aws_kms_key.this["files"].arn
}
