output "app_secret_arn" {
  description = "ARN of the application secret."
  value       = aws_secretsmanager_secret.app.arn
}

output "web_acl_arn" {
  description = "ARN of the web ACL."
  value       = module.security.web_acl_arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "ecr_repository_url" {
  description = "URL of the image repository."
  value       = module.registry.ecr_repository_url
}

output "github_oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider."
  value       = module.registry.github_oidc_provider_arn
}

output "files_bucket_name" {
  description = "Name of the files bucket."
  value       = module.files.bucket_name
}

output "file_store_url" {
  description = "The api role's --file-store."
  value       = module.files.url
}

output "files_kms_key_arn" {
  description = "ARN of the files key."
  value       = module.security.files_kms_key_arn
}

output "api_role_name" {
  description = "Name of the role carrying the api role's files policy."
  value       = aws_iam_role.api.name
}
