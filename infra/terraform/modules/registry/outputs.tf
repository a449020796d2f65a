output "github_oidc_provider_arn" {
  description = "ARN of the GitHub Actions OIDC provider (the environments' CI roles trust it)."
  value       = aws_iam_openid_connect_provider.github.arn
}

output "ecr_repository_url" {
  description = "URL of the image repository (GitHub variable ECR_REPOSITORY; the release's image.repository)."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the image repository."
  value       = aws_ecr_repository.this.arn
}

output "ecr_kms_key_arn" {
  description = "KMS key of the image repository."
  value       = aws_kms_key.ecr.arn
}

output "plan_role_arn" {
  description = "Role of pull-request plans (GitHub variable AWS_TERRAFORM_PLAN_ROLE_ARN)."
  value       = aws_iam_role.plan.arn
}

output "release_role_arn" {
  description = "Role that pushes images (GitHub variable AWS_RELEASE_ROLE_ARN)."
  value       = aws_iam_role.release.arn
}
