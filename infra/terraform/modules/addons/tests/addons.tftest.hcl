# Run from modules/addons: terraform init -backend=false && terraform test
# The helm provider is mocked: nothing is installed and no cluster is needed.

mock_provider "helm" {}

variables {
  cluster_name               = "palaver-test"
  region                     = "eu-west-1"
  vpc_id                     = "vpc-0123456789abcdef0"
  application_log_group_name = "/aws/eks/palaver-test/application"
  pod_identities = {
    cluster-autoscaler           = { namespace = "kube-system", service_account = "cluster-autoscaler", role_arn = "arn:aws:iam::123456789012:role/palaver-test-cluster-autoscaler" }
    aws-load-balancer-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller", role_arn = "arn:aws:iam::123456789012:role/palaver-test-aws-load-balancer-controller" }
    external-secrets             = { namespace = "external-secrets", service_account = "external-secrets", role_arn = "arn:aws:iam::123456789012:role/palaver-test-external-secrets" }
    fluent-bit                   = { namespace = "logging", service_account = "fluent-bit", role_arn = "arn:aws:iam::123456789012:role/palaver-test-fluent-bit" }
  }
}

run "installs_every_platform_release_under_its_pod_identity" {
  command = plan

  assert {
    condition     = toset(keys(helm_release.this)) == toset(["cluster-autoscaler", "external-secrets", "kube-prometheus-stack", "fluent-bit"]) && helm_release.load_balancer_controller.chart == "aws-load-balancer-controller"
    error_message = "Expected cluster-autoscaler, aws-load-balancer-controller, external-secrets, kube-prometheus-stack and fluent-bit."
  }

  assert {
    condition     = yamldecode(helm_release.this["cluster-autoscaler"].values[0]).rbac.serviceAccount.name == "cluster-autoscaler" && yamldecode(helm_release.this["cluster-autoscaler"].values[0]).autoDiscovery.clusterName == "palaver-test"
    error_message = "The cluster autoscaler must auto-discover this cluster's groups under its Pod Identity service account."
  }

  assert {
    condition     = yamldecode(helm_release.load_balancer_controller.values[0]).serviceAccount.name == "aws-load-balancer-controller" && yamldecode(helm_release.load_balancer_controller.values[0]).vpcId == var.vpc_id
    error_message = "The load balancer controller needs its service account, and the VPC ID (IMDS is out of reach of pods)."
  }

  assert {
    condition     = alltrue([for r in helm_release.this : r.version != null && r.version != ""]) && helm_release.load_balancer_controller.version != null
    error_message = "Every chart version must be pinned."
  }
}

run "ships_logs_to_cloudwatch_only_by_default" {
  command = plan

  assert {
    condition     = strcontains(output.fluent_bit_outputs, "cloudwatch_logs") && strcontains(output.fluent_bit_outputs, var.application_log_group_name) && !strcontains(output.fluent_bit_outputs, "opensearch")
    error_message = "Without an OpenSearch endpoint, Fluent Bit writes to CloudWatch Logs only."
  }
}

run "also_ships_logs_to_opensearch_when_given" {
  command = plan

  variables {
    opensearch_endpoint = "search-palaver-logs-abc123.eu-west-1.es.amazonaws.com"
  }

  assert {
    condition     = strcontains(output.fluent_bit_outputs, "cloudwatch_logs") && strcontains(output.fluent_bit_outputs, "Name               opensearch") && strcontains(output.fluent_bit_outputs, var.opensearch_endpoint)
    error_message = "With an OpenSearch endpoint, Fluent Bit writes to both CloudWatch Logs and OpenSearch."
  }
}
