output "apply_role_arn" {
  description = "Role of the GitHub environment terraform-<env> (AWS_TERRAFORM_ROLE_ARN)."
  value       = aws_iam_role.apply.arn
}

output "deploy_role_arn" {
  description = "Role of the GitHub environment <env> (AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}

output "runner_project_name" {
  description = "CodeBuild project of the deploy runner: the deploy job runs on `codebuild-<this>-<run id>-<attempt>` (RUNNER_PROJECT)."
  value       = aws_codebuild_project.runner.name
}

output "runner_security_group_id" {
  description = "Security group of the runner (admitted by the EKS API endpoint)."
  value       = aws_security_group.runner.id
}

output "helm_values_parameter" {
  description = "SSM parameter with the release's infrastructure values (HELM_VALUES_PARAMETER)."
  value       = aws_ssm_parameter.helm_values.name
}
