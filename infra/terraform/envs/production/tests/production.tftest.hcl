# Run from envs/production: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

override_data {
  target = data.terraform_remote_state.account
  values = {
    outputs = {
      github_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
      ecr_repository_url       = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/palaver"
      ecr_repository_arn       = "arn:aws:ecr:eu-west-1:123456789012:repository/palaver"
      ecr_kms_key_arn          = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    }
  }
}

variables {
  github_repository           = "palaver-chat/palaver"
  github_connection_arn       = "arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-2222-3333-4444-555555555555"
  host_name                   = "chat.example.com"
  cluster_public_access_cidrs = ["203.0.113.0/24"]
}

run "production_database_is_protected_and_encrypted" {
  command = plan

  assert {
    condition     = module.platform.deletion_protection == true
    error_message = "Production's database must have deletion protection on."
  }

  assert {
    condition     = module.platform.final_snapshot_identifier == "palaver-production-final"
    error_message = "Deleting production's database must take a final snapshot."
  }
}

run "production_has_a_nat_gateway_per_az" {
  command = plan

  assert {
    condition     = length(module.platform.nat_public_ips) == 3
    error_message = "Production egress must survive an AZ outage."
  }
}

run "outputs_feed_the_helm_values" {
  command = plan

  assert {
    condition     = output.cluster_name == "palaver-production" && output.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555" && output.github_environment_variables.BASE_URL == "https://${var.host_name}"
    error_message = "The Helm values need the cluster name and the certificate ARN."
  }

  assert {
    condition     = output.alb_ingress_annotations["alb.ingress.kubernetes.io/certificate-arn"] == output.certificate_arn && module.platform.helm_values.ingress.hosts == [var.host_name]
    error_message = "The ingress annotations must carry the certificate."
  }
}
