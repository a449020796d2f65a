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
    alertmanager                 = { namespace = "monitoring", service_account = "alertmanager", role_arn = "arn:aws:iam::123456789012:role/palaver-test-alertmanager" }
  }
  alert_topic_arn     = "arn:aws:sns:eu-west-1:123456789012:palaver-test-alerts"
  storage_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "control_plane_scrapes_off_alerts_reach_sns_volumes_encrypted_gp3" {
  command = plan

  assert {
    condition = alltrue([
      for component in ["kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"] :
      yamldecode(helm_release.this["kube-prometheus-stack"].values[0])[component].enabled == false
    ])
    error_message = "EKS hides its control plane: scraping it leaves the down alerts firing for ever."
  }

  assert {
    condition     = yamldecode(helm_release.this["kube-prometheus-stack"].values[0]).alertmanager.config.receivers[1].sns_configs[0].topic_arn == var.alert_topic_arn
    error_message = "Alertmanager's default receiver publishes to the alert topic."
  }

  assert {
    condition     = yamldecode(helm_release.platform_objects.values[0]).storageClass.kmsKeyId == var.storage_kms_key_arn && yamldecode(helm_release.this["kube-prometheus-stack"].values[0]).prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName == "gp3-encrypted"
    error_message = "Every volume uses the encrypted gp3 StorageClass."
  }

  assert {
    condition     = yamldecode(helm_release.platform_objects.values[0]).clusterSecretStore.apiVersion == "external-secrets.io/v1" && yamldecode(helm_release.platform_objects.values[0]).clusterSecretStore.name == "aws-secrets-manager"
    error_message = "The ClusterSecretStore the application reads from exists, in the API the pinned operator serves."
  }
}

run "an_operator_without_the_v1_api_is_refused" {
  command = plan

  variables {
    chart_versions = { external_secrets = "0.12.1" }
  }

  expect_failures = [var.chart_versions]
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
