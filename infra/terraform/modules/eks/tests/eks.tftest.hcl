# Run from modules/eks: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  name                       = "palaver-test"
  vpc_id                     = "vpc-0123456789abcdef0"
  subnet_ids                 = ["subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"]
  public_access_cidrs        = ["203.0.113.0/24"]
  secrets_kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  logs_kms_key_arn           = "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000"
  app_secret_arn             = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:palaver-test/app/database-AbCdEf"
  app_secret_kms_key_arn     = "arn:aws:kms:eu-west-1:123456789012:key/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
  alert_topic_arn            = "arn:aws:sns:eu-west-1:123456789012:palaver-test-alerts"
  alert_topic_kms_key_arn    = "arn:aws:kms:eu-west-1:123456789012:key/bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee"
  extra_readable_secret_arns = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-1234-AbCdEf"]
  ci_admin_role_arns         = { ci-apply = "arn:aws:iam::123456789012:role/palaver-test-ci-apply" }
  namespace_deploy_role_arns = { ci-deploy = "arn:aws:iam::123456789012:role/palaver-test-ci-deploy" }
  node_groups = {
    general = {
      instance_types = ["m6i.large"]
      min_size       = 2
      max_size       = 6
      desired_size   = 3
      labels         = { workload = "general" }
    }
  }
}

run "private_endpoint_encrypted_secrets_and_control_plane_logs" {
  command = plan

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access
    error_message = "The private API endpoint must be on."
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && toset(aws_eks_cluster.this.vpc_config[0].public_access_cidrs) == toset(["203.0.113.0/24"])
    error_message = "The public endpoint must be limited to the given CIDRs."
  }

  assert {
    condition     = aws_eks_cluster.this.encryption_config[0].provider[0].key_arn == var.secrets_kms_key_arn && contains(aws_eks_cluster.this.encryption_config[0].resources, "secrets")
    error_message = "Kubernetes secrets must be envelope-encrypted with the customer KMS key."
  }

  assert {
    condition     = length(aws_eks_cluster.this.enabled_cluster_log_types) == 5 && aws_cloudwatch_log_group.cluster.kms_key_id == var.logs_kms_key_arn
    error_message = "All control-plane log types must go to an encrypted log group."
  }
}

run "node_groups_autoscale_and_are_discoverable" {
  command = plan

  assert {
    condition     = aws_eks_node_group.this["general"].scaling_config[0].min_size == 2 && aws_eks_node_group.this["general"].scaling_config[0].max_size == 6
    error_message = "The node group must carry the autoscaling bounds."
  }

  assert {
    condition     = length(aws_eks_node_group.this["general"].subnet_ids) == 3
    error_message = "The node group must span every AZ's private subnet."
  }

  assert {
    condition = alltrue([for key in ["general/k8s.io/cluster-autoscaler/enabled", "general/k8s.io/cluster-autoscaler/palaver-test", "general/k8s.io/cluster-autoscaler/node-template/label/workload"] :
    contains(keys(aws_autoscaling_group_tag.this), key)])
    error_message = "The Auto Scaling group must carry the cluster autoscaler's discovery (and node-template) tags."
  }

  assert {
    condition     = aws_launch_template.node["general"].metadata_options[0].http_tokens == "required" && aws_launch_template.node["general"].block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Nodes must require IMDSv2 and have encrypted volumes."
  }
}

run "installs_the_eks_addons_and_pod_identities" {
  command = plan

  assert {
    condition     = setunion(keys(aws_eks_addon.before_nodes), keys(aws_eks_addon.after_nodes)) == toset(["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"])
    error_message = "Expected the vpc-cni, coredns, kube-proxy, EBS CSI and Pod Identity agent add-ons."
  }

  assert {
    condition     = toset(keys(aws_eks_pod_identity_association.this)) == toset(["cluster-autoscaler", "aws-load-balancer-controller", "external-secrets", "fluent-bit", "ebs-csi-driver", "alertmanager"])
    error_message = "Without IAM database auth the application gets no AWS role."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.external_secrets.statement :
      s.sid != "ReadApplicationSecret" || s.resources == toset([var.app_secret_arn])
    ])
    error_message = "External Secrets may read the application's secret and nothing else."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.cluster_autoscaler.statement :
      s.sid != "ScaleOwnGroupsOnly" || anytrue([for c in s.condition : c.variable == "aws:ResourceTag/k8s.io/cluster-autoscaler/palaver-test"])
    ])
    error_message = "The cluster autoscaler may only scale groups tagged for this cluster."
  }
}

run "application_gets_only_rds_db_connect_for_its_user" {
  command = plan

  variables {
    db_iam_auth = {
      cluster_resource_id = "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
      username            = "palaver_app"
    }
  }

  assert {
    condition     = contains(keys(aws_eks_pod_identity_association.this), "application")
    error_message = "With IAM database auth the application gets a Pod Identity role."
  }

  assert {
    condition = (
      length(data.aws_iam_policy_document.application[0].statement) == 1 &&
      data.aws_iam_policy_document.application[0].statement[0].actions == toset(["rds-db:connect"]) &&
      data.aws_iam_policy_document.application[0].statement[0].resources == toset(["arn:aws:rds-db:eu-west-1:123456789012:dbuser:cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ/palaver_app"])
    )
    error_message = "The application role may only rds-db:connect as its own database user."
  }
}

run "only_the_api_role_gets_the_files_policy" {
  command = plan

  variables {
    api_policy_jsons = {
      files = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::palaver-test-files-123456789012/files/*\"}]}"
    }
  }

  assert {
    condition = (
      aws_eks_pod_identity_association.this["api"].service_account == "palaver-api" &&
      aws_eks_pod_identity_association.this["api"].namespace == "palaver" &&
      !contains(keys(aws_eks_pod_identity_association.this), "application")
    )
    error_message = "The files policy goes to the api role's own service account, and no other application role is created."
  }

  assert {
    condition     = data.aws_iam_policy_document.api[0].source_policy_documents == tolist([var.api_policy_jsons["files"]])
    error_message = "The api role's policy is the files bucket's document and nothing else."
  }
}

run "api_stays_private_without_cidrs" {
  command = plan

  variables {
    public_access_cidrs = []
  }

  assert {
    condition     = !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "Without CIDRs the public endpoint must be off."
  }
}

run "rejects_an_api_open_to_the_internet" {
  command = plan

  variables {
    public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.public_access_cidrs]
}

run "rejects_inverted_autoscaling_bounds" {
  command = plan

  variables {
    node_groups = {
      general = {
        instance_types = ["m6i.large"]
        min_size       = 5
        max_size       = 2
        desired_size   = 3
      }
    }
  }

  expect_failures = [var.node_groups]
}

run "network_policies_are_enforced_and_ci_reaches_the_cluster" {
  command = plan

  assert {
    condition     = jsondecode(aws_eks_addon.before_nodes["vpc-cni"].configuration_values).enableNetworkPolicy == "true"
    error_message = "The vpc-cni add-on must run its network policy agent, or NetworkPolicies are not enforced."
  }

  assert {
    condition     = aws_eks_access_policy_association.namespace["ci-deploy"].access_scope[0].type == "namespace" && aws_eks_access_policy_association.namespace["ci-deploy"].access_scope[0].namespaces == toset(["palaver"])
    error_message = "The deploy role must reach only the application's namespace."
  }

  assert {
    condition     = aws_eks_access_policy_association.admin["ci-apply"].access_scope[0].type == "cluster"
    error_message = "The apply role installs the add-ons: it needs cluster-admin."
  }
}
