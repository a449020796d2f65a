output "github_oidc_provider_arn" {
  description = "ARN of the GitHub Actions OIDC provider."
  value       = module.registry.github_oidc_provider_arn
}

output "ecr_repository_url" {
  description = "Image repository (GitHub variable ECR_REPOSITORY)."
  value       = module.registry.ecr_repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the image repository."
  value       = module.registry.ecr_repository_arn
}

output "ecr_kms_key_arn" {
  description = "KMS key of the image repository."
  value       = module.registry.ecr_kms_key_arn
}

output "plan_role_arn" {
  description = "GitHub variable AWS_TERRAFORM_PLAN_ROLE_ARN."
  value       = module.registry.plan_role_arn
}

output "release_role_arn" {
  description = "GitHub variable AWS_RELEASE_ROLE_ARN."
  value       = module.registry.release_role_arn
}

output "trail_arn" {
  description = "ARN of the account's multi-region trail."
  value       = module.audit.trail_arn
}
