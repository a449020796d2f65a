output "version_id" {
  description = "Secrets Manager version ID of the value written."
  value       = aws_secretsmanager_secret_version.this.version_id
}
