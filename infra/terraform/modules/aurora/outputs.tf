output "cluster_identifier" {
  description = "Identifier of the Aurora cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "cluster_arn" {
  description = "ARN of the Aurora cluster."
  value       = aws_rds_cluster.this.arn
}

output "cluster_resource_id" {
  description = "Resource ID of the cluster, the part of `rds-db:connect` ARNs that names it."
  value       = aws_rds_cluster.this.cluster_resource_id
}

output "endpoint" {
  description = "Writer endpoint (read-write)."
  value       = aws_rds_cluster.this.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint, load-balanced over the readers."
  value       = aws_rds_cluster.this.reader_endpoint
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_rds_cluster.this.port
}

output "database_name" {
  description = "Name of the application database."
  value       = aws_rds_cluster.this.database_name
}

output "master_user_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret with the master credentials (for the bootstrap job, never for the application)."
  value       = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

output "app_secret_arn" {
  description = "ARN of the application's connection secret, the one External Secrets syncs into the cluster."
  value       = aws_secretsmanager_secret.app.arn
}

output "security_group_id" {
  description = "ID of the cluster's security group."
  value       = aws_security_group.this.id
}

output "deletion_protection" {
  description = "Whether the cluster refuses deletion."
  value       = aws_rds_cluster.this.deletion_protection
}

output "final_snapshot_identifier" {
  description = "Snapshot taken when the cluster is deleted; null when none is taken."
  value       = aws_rds_cluster.this.final_snapshot_identifier
}

output "log_group_name" {
  description = "CloudWatch Logs group of the exported PostgreSQL logs."
  value       = aws_cloudwatch_log_group.postgresql.name
}

output "app_secret_name" {
  description = "Name of the application's connection secret (the `remoteRef.key` of the ExternalSecret)."
  value       = aws_secretsmanager_secret.app.name
}

output "app_username" {
  description = "Database role the application logs in as."
  value       = var.app_username
}

output "app_connection" {
  description = "The application secret's non-secret fields (engine, username, host, port, dbname); the add-ons layer writes them with a generated password (modules/secret-value)."
  value = {
    engine   = "postgres"
    username = var.app_username
    host     = aws_rds_cluster.this.endpoint
    port     = tostring(aws_rds_cluster.this.port)
    dbname   = var.database_name
  }
}
