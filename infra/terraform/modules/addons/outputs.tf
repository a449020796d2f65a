output "releases" {
  description = "Every Helm release installed, by name: namespace, chart and chart version."
  value = merge(
    {
      (helm_release.load_balancer_controller.name) = {
        namespace = helm_release.load_balancer_controller.namespace
        chart     = helm_release.load_balancer_controller.chart
        version   = helm_release.load_balancer_controller.version
      }
    },
    {
      for name, r in helm_release.this : name => {
        namespace = r.namespace
        chart     = r.chart
        version   = r.version
      }
    },
  )
}

output "fluent_bit_outputs" {
  description = "The Fluent Bit [OUTPUT] sections rendered for this environment (CloudWatch Logs, plus OpenSearch when an endpoint is given)."
  value       = local.releases["fluent-bit"].values.config.outputs
}

output "external_secrets_api_version" {
  description = "API version of the pinned External Secrets (the application chart's database.externalSecret.apiVersion must match)."
  value       = local.external_secrets_api_version
}

output "cluster_secret_store_name" {
  description = "Name of the ClusterSecretStore the application's ExternalSecrets reference."
  value       = var.cluster_secret_store_name
}
