# What the Helm values (deploy/helm, deploy/kustomize overlays) need, by name;
# everything else modules/platform outputs is in `platform`.

output "cluster_name" {
  description = "Name of the EKS cluster (kubeconfig: aws eks update-kubeconfig --name <this>)."
  value       = module.platform.cluster_name
}

output "db_endpoint" {
  description = "Aurora writer endpoint (host of the application's DATABASE_URL)."
  value       = module.platform.db_endpoint
}

output "app_secret_arn" {
  description = "Secrets Manager ARN of the application's connection secret, for the ExternalSecret."
  value       = module.platform.app_secret_arn
}

output "waf_web_acl_arn" {
  description = "WAFv2 web ACL ARN for the `alb.ingress.kubernetes.io/wafv2-acl-arn` ingress annotation."
  value       = module.platform.waf_web_acl_arn
}

output "certificate_arn" {
  description = "ACM certificate ARN of host_name (requested and DNS-validated, or looked up), for the `alb.ingress.kubernetes.io/certificate-arn` ingress annotation."
  value       = module.platform.certificate_arn
}

output "files_bucket_name" {
  description = "S3 bucket of the uploaded files (the release's fileStore.url names it)."
  value       = module.platform.files_bucket_name
}

output "alb_ingress_annotations" {
  description = "The ingress annotations that attach the WAF and the certificate to the ALB, ready to paste into the Helm values."
  value       = module.platform.alb_ingress_annotations
}

output "helm_values_parameter" {
  description = "SSM parameter with the release's infrastructure values (GitHub environment variable HELM_VALUES_PARAMETER)."
  value       = module.platform.helm_values_parameter
}

output "github_environment_variables" {
  description = "The variables of the GitHub environment `<env>` the deploy workflow reads (README, Deploy), from this apply."
  value = {
    AWS_REGION            = module.platform.region
    BASE_URL              = "https://${module.platform.host_name}"
    AWS_DEPLOY_ROLE_ARN   = module.platform.ci_deploy_role_arn
    EKS_CLUSTER_NAME      = module.platform.cluster_name
    HELM_VALUES_PARAMETER = module.platform.helm_values_parameter
    RUNNER_PROJECT        = module.platform.ci_runner_project_name
  }
}

output "platform" {
  description = "Every output of modules/platform (listed in its README): the add-ons layer reads it through terraform_remote_state; e.g. terraform output -json platform | jq -r .db_master_secret_arn"
  value       = module.platform
}
