# Run from envs/staging: terraform init -backend=false && terraform test

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
  host_name                   = "chat.staging.example.com"
  route53_zone_id             = "Z0123456789ABCDEFGHIJ"
  cluster_public_access_cidrs = ["203.0.113.0/24"]
}

run "staging_can_be_torn_down" {
  command = plan

  assert {
    condition     = module.platform.deletion_protection == false && module.platform.final_snapshot_identifier == null
    error_message = "Staging is disposable: no deletion protection, no final snapshot."
  }
}

run "staging_shares_one_nat_gateway" {
  command = plan

  assert {
    condition     = length(module.platform.nat_public_ips) == 1
    error_message = "Staging uses a single NAT gateway."
  }
}

run "outputs_feed_the_helm_values" {
  command = plan

  assert {
    condition     = output.cluster_name == "palaver-staging" && output.github_environment_variables.BASE_URL == "https://chat.staging.example.com"
    error_message = "The Helm values need the cluster name; the smoke suite's URL is the host name's."
  }

  assert {
    condition     = module.platform.helm_values.ingress.hosts == ["chat.staging.example.com"] && module.platform.helm_values.fileStore.maxFileBytes == 26214400
    error_message = "The Ingress host and the file limit come from Terraform."
  }
}
