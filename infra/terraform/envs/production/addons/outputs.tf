output "releases" {
  description = "Helm releases installed, by name: namespace, chart and version."
  value       = module.addons.releases
}
