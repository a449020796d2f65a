output "secret_arn" {
  description = "ARN of the bus secret (token, host, port): the release's bus.redis.key; External Secrets may read it."
  value       = aws_secretsmanager_secret.this.arn
}

output "primary_endpoint" {
  description = "Primary endpoint of the replication group."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "TCP port of the broker."
  value       = var.port
}

output "security_group_id" {
  description = "Security group of the broker."
  value       = aws_security_group.this.id
}
