# Run from modules/platform: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  environment                 = "test"
  github_repository           = "palaver-chat/palaver"
  github_oidc_provider_arn    = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
  github_connection_arn       = "arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-2222-3333-4444-555555555555"
  ecr_repository_url          = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/palaver"
  ecr_repository_arn          = "arn:aws:ecr:eu-west-1:123456789012:repository/palaver"
  ecr_kms_key_arn             = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  name                        = "palaver-test"
  azs                         = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  vpc_cidr                    = "10.30.0.0/16"
  host_name                   = "chat.test.example.com"
  cluster_public_access_cidrs = ["203.0.113.0/24"]
  aurora_min_capacity         = 0.5
  aurora_max_capacity         = 4
  node_groups = {
    general = {
      instance_types = ["m6i.large"]
      min_size       = 2
      max_size       = 6
      desired_size   = 3
    }
  }
}

run "protected_by_default" {
  command = plan

  assert {
    condition     = output.deletion_protection == true && module.aurora.deletion_protection == true
    error_message = "Without an opt-out the database must have deletion protection on."
  }

  assert {
    condition     = output.final_snapshot_identifier == "palaver-test-final"
    error_message = "Without an opt-out deleting the database must take a final snapshot."
  }

  assert {
    condition     = length(output.nat_public_ips) == 3
    error_message = "Without an opt-out every AZ gets its own NAT gateway."
  }
}

run "throw_away_environments_opt_out" {
  command = plan

  variables {
    single_nat_gateway                  = true
    deletion_protection                 = false
    skip_final_snapshot                 = true
    backup_retention_days               = 7
    performance_insights_retention_days = 7
    kms_deletion_window_days            = 7
    app_secret_recovery_window_days     = 0
  }

  assert {
    condition     = output.deletion_protection == false && output.final_snapshot_identifier == null
    error_message = "A throw-away environment has no deletion protection and no final snapshot."
  }

  assert {
    condition     = length(output.nat_public_ips) == 1
    error_message = "single_nat_gateway must leave one NAT gateway."
  }
}

run "one_name_and_the_edge_outputs" {
  command = plan

  assert {
    condition     = output.cluster_name == var.name && output.region == "eu-west-1"
    error_message = "The cluster must be named after the environment, in the provider's region."
  }

  assert {
    condition     = output.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555" && output.alb_ingress_annotations["alb.ingress.kubernetes.io/certificate-arn"] == output.certificate_arn
    error_message = "Without a zone the issued certificate of host_name is looked up; the ingress annotations must carry it."
  }

  assert {
    condition     = module.certificate.requested == false && output.host_name == var.host_name
    error_message = "Without a zone nothing is requested."
  }
}

run "with_a_zone_the_certificate_is_requested_and_dns_validated" {
  command = plan

  variables {
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
  }

  assert {
    condition = (
      module.certificate.requested == true &&
      module.certificate.host_name == var.host_name
    )
    error_message = "With a zone, the certificate of host_name is requested there."
  }
}

run "rejects_an_api_open_to_the_internet" {
  command = plan

  variables {
    cluster_public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.cluster_public_access_cidrs]
}

run "rejects_a_host_name_that_is_not_one" {
  command = plan

  variables {
    host_name = "https://chat.example.com/"
  }

  expect_failures = [var.host_name]
}

run "the_release_values_come_from_the_infrastructure" {
  command = plan

  assert {
    condition     = output.helm_values.config.trustedProxies == [var.vpc_cidr] && output.helm_values.networkPolicy.ingress.cidrs == [var.vpc_cidr]
    error_message = "Trusted proxies and the ingress NetworkPolicy must be the VPC's CIDR, where the ALB connects from."
  }

  assert {
    condition     = output.helm_values.database.externalSecret.key == "palaver-test/app/database" && output.helm_values.database.externalSecret.secretStoreRef.name == var.cluster_secret_store_name
    error_message = "The release must read the secret Terraform creates, through the store the add-ons layer creates."
  }

  assert {
    condition     = output.helm_values.ingress.alb.certificateArn == output.certificate_arn && output.helm_values.image.repository == var.ecr_repository_url
    error_message = "Certificate and image repository come from the infrastructure."
  }

  assert {
    condition     = output.helm_values.ingress.hosts == [var.host_name]
    error_message = "The Ingress host is host_name, the certificate's domain."
  }

  assert {
    condition     = output.helm_values.fileStore.maxFileBytes == 26214400 && output.helm_values.fileStore.region == "eu-west-1" && startswith(output.helm_values.fileStore.url, "s3://palaver-test-files-123456789012/")
    error_message = "The release's file store is the files bucket, with --max-file-bytes and the region."
  }

  assert {
    condition     = module.eks.pod_identities["api"].service_account == "palaver-api" && !contains(keys(module.eks.pod_identities), "application")
    error_message = "Only the api role's service account gets the files bucket's policy."
  }

  assert {
    condition     = alltrue([for cidr in output.helm_values.database.cidrs : cidrsubnet(var.vpc_cidr, 8, 8) == cidr || cidrsubnet(var.vpc_cidr, 8, 9) == cidr || cidrsubnet(var.vpc_cidr, 8, 10) == cidr])
    error_message = "Database egress must be the database subnets of this VPC."
  }
}

run "accounts_and_the_broker_reach_the_release_when_enabled" {
  command = plan

  variables {
    identity_enabled       = true
    identity_callback_urls = ["https://chat.example.com/"]
    bus_enabled            = true
  }

  assert {
    condition     = output.helm_values.bus.redis.enabled == true && tolist(output.helm_values.bus.redis.cidrs) == tolist(module.network.private_subnet_cidrs)
    error_message = "With the broker the release switches its bus, and its egress reaches the private subnets only."
  }

  assert {
    condition     = module.bus[0].port == 6379 && length(module.eks.pod_identities) > 0
    error_message = "The broker listens on 6379."
  }
}

run "no_broker_and_no_user_pool_by_default" {
  command = plan

  assert {
    condition     = output.helm_values.bus.redis.enabled == false && output.helm_values.auth.oidc.issuer == "" && length(module.bus) == 0 && length(module.identity) == 0
    error_message = "Without the switches the release keeps the PostgreSQL bus and local accounts."
  }
}
