/**
 * Add-ons: the cluster's platform Helm releases, applied as a second layer
 * once the cluster exists. Every release that calls AWS runs under the
 * service account the eks module bound to a Pod Identity role.
 */

locals {
  sa = var.pod_identities

  # The API the pinned External Secrets serves: v1 from 0.16.2 (0.16.x serves
  # v1beta1 too, 0.17 and later only v1). The application chart renders v1.
  eso_version                  = [for part in split(".", var.chart_versions.external_secrets) : tonumber(part)]
  external_secrets_api_version = local.eso_version[0] > 0 || local.eso_version[1] > 16 || (local.eso_version[1] == 16 && local.eso_version[2] >= 2) ? "external-secrets.io/v1" : "external-secrets.io/v1beta1"

  fluent_bit_cloudwatch_output = <<-EOT
    [OUTPUT]
        Name              cloudwatch_logs
        Match             kube.*
        region            ${var.region}
        log_group_name    ${var.application_log_group_name}
        log_stream_prefix ${var.cluster_name}.
        auto_create_group Off
  EOT

  # AWS_Auth signs with the Pod Identity credentials (Fluent Bit 4.0+).
  fluent_bit_opensearch_output = var.opensearch_endpoint == null ? "" : <<-EOT
    [OUTPUT]
        Name               opensearch
        Match              kube.*
        Host               ${var.opensearch_endpoint}
        Port               443
        tls                On
        tls.verify         On
        AWS_Auth           On
        AWS_Region         ${var.region}
        Index              ${var.opensearch_index}
        Suppress_Type_Name On
        Replace_Dots       On
        Trace_Error        On
  EOT

  # EKS runs the control plane out of sight: no scheduler, controller
  # manager or etcd to scrape, and kube-proxy's metrics listen on the node's
  # loopback only. Scraping them would leave their "down" alerts firing.
  hidden_control_plane = {
    kubeControllerManager = { enabled = false }
    kubeScheduler         = { enabled = false }
    kubeEtcd              = { enabled = false }
    kubeProxy             = { enabled = false }
  }

  alertmanager_receivers = concat(
    [
      { name = "null" },
      {
        name = "sns"
        sns_configs = [{
          topic_arn     = var.alert_topic_arn
          send_resolved = true
          subject       = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} (${var.cluster_name})"
          sigv4         = { region = var.region }
        }]
      },
    ],
    var.slack_webhook_secret_name == null ? [] : [{
      name = "slack"
      slack_configs = [{
        api_url_file  = "/etc/alertmanager/secrets/${var.slack_webhook_secret_name}/url"
        channel       = var.slack_channel
        send_resolved = true
      }]
    }],
  )

  # Every release but the load balancer controller, which goes first: its
  # webhook intercepts Services, so it must be up before anything creates one.
  releases = {
    cluster-autoscaler = {
      repository = "https://kubernetes.github.io/autoscaler"
      chart      = "cluster-autoscaler"
      version    = var.chart_versions.cluster_autoscaler
      namespace  = local.sa["cluster-autoscaler"].namespace
      values = {
        awsRegion     = var.region
        autoDiscovery = { clusterName = var.cluster_name }
        rbac = {
          serviceAccount = { create = true, name = local.sa["cluster-autoscaler"].service_account }
        }
        extraArgs = {
          balance-similar-node-groups   = true
          skip-nodes-with-system-pods   = false
          skip-nodes-with-local-storage = false
          expander                      = "least-waste"
        }
        podDisruptionBudget = { maxUnavailable = 1 }
      }
    }

    external-secrets = {
      repository = "https://charts.external-secrets.io"
      chart      = "external-secrets"
      version    = var.chart_versions.external_secrets
      namespace  = local.sa["external-secrets"].namespace
      values = {
        installCRDs    = true
        serviceAccount = { create = true, name = local.sa["external-secrets"].service_account }
      }
    }

    kube-prometheus-stack = {
      repository = "https://prometheus-community.github.io/helm-charts"
      chart      = "kube-prometheus-stack"
      version    = var.chart_versions.kube_prometheus_stack
      namespace  = "monitoring"
      values = merge(local.hidden_control_plane, {
        defaultRules = {
          rules = {
            etcd                   = false
            kubeControllerManager  = false
            kubeSchedulerAlerting  = false
            kubeSchedulerRecording = false
            kubeProxy              = false
          }
        }
        alertmanager = {
          serviceAccount = { create = true, name = local.sa["alertmanager"].service_account }
          config = {
            route = {
              receiver        = "sns"
              group_by        = ["alertname", "namespace"]
              group_wait      = "30s"
              group_interval  = "5m"
              repeat_interval = "4h"
              routes = concat(
                [{ receiver = "null", matchers = ["alertname =~ \"Watchdog|InfoInhibitor\""] }],
                var.slack_webhook_secret_name == null ? [] : [{ receiver = "slack", matchers = ["severity = \"critical\""], continue = true }],
              )
            }
            receivers = local.alertmanager_receivers
          }
          alertmanagerSpec = {
            secrets = var.slack_webhook_secret_name == null ? [] : [var.slack_webhook_secret_name]
            storage = {
              volumeClaimTemplate = {
                spec = {
                  storageClassName = var.storage_class_name
                  accessModes      = ["ReadWriteOnce"]
                  resources        = { requests = { storage = "5Gi" } }
                }
              }
            }
          }
        }
        prometheus = {
          prometheusSpec = {
            retention = var.prometheus_retention
            # Pick up the ServiceMonitors and PrometheusRules of every chart
            # (Palaver's included), not only this release's own.
            serviceMonitorSelectorNilUsesHelmValues = false
            podMonitorSelectorNilUsesHelmValues     = false
            ruleSelectorNilUsesHelmValues           = false
            storageSpec = {
              volumeClaimTemplate = {
                spec = {
                  storageClassName = var.storage_class_name
                  accessModes      = ["ReadWriteOnce"]
                  resources        = { requests = { storage = var.prometheus_storage_size } }
                }
              }
            }
          }
        }
        grafana = {
          # Unset the chart's well-known default, so Grafana generates one.
          adminPassword = null
          persistence   = { enabled = true, storageClassName = var.storage_class_name, size = "10Gi" }
          sidecar = {
            dashboards = { enabled = true, searchNamespace = "ALL" }
          }
        }
      })
    }

    fluent-bit = {
      repository = "https://fluent.github.io/helm-charts"
      chart      = "fluent-bit"
      version    = var.chart_versions.fluent_bit
      namespace  = local.sa["fluent-bit"].namespace
      values = {
        serviceAccount = { create = true, name = local.sa["fluent-bit"].service_account }
        config = {
          outputs = join("\n", compact([local.fluent_bit_cloudwatch_output, local.fluent_bit_opensearch_output]))
        }
      }
    }
  }
}

#### AWS Load Balancer Controller

resource "helm_release" "load_balancer_controller" {
  name             = "aws-load-balancer-controller"
  repository       = "https://aws.github.io/eks-charts"
  chart            = "aws-load-balancer-controller"
  version          = var.chart_versions.aws_load_balancer_controller
  namespace        = local.sa["aws-load-balancer-controller"].namespace
  create_namespace = true
  atomic           = true
  cleanup_on_fail  = true
  timeout          = 600

  values = [yamlencode({
    clusterName  = var.cluster_name
    region       = var.region
    vpcId        = var.vpc_id
    replicaCount = 2
    serviceAccount = {
      create = true
      name   = local.sa["aws-load-balancer-controller"].service_account
    }
  })]
}

#### Cluster-level objects (after External Secrets, whose CRDs they use)

resource "helm_release" "platform_objects" {
  name            = "platform-objects"
  chart           = "${path.module}/charts/platform-objects"
  namespace       = local.sa["external-secrets"].namespace
  atomic          = true
  cleanup_on_fail = true
  timeout         = 300

  values = [yamlencode({
    clusterSecretStore = {
      name       = var.cluster_secret_store_name
      apiVersion = local.external_secrets_api_version
      region     = var.region
      namespaces = [var.app_namespace]
    }
    storageClass = {
      name     = var.storage_class_name
      kmsKeyId = var.storage_kms_key_arn
    }
  })]

  depends_on = [helm_release.this["external-secrets"]]
}

#### Platform releases

resource "helm_release" "this" {
  for_each = local.releases

  name             = each.key
  repository       = each.value.repository
  chart            = each.value.chart
  version          = each.value.version
  namespace        = each.value.namespace
  create_namespace = true
  atomic           = true
  cleanup_on_fail  = true
  timeout          = 900

  values = [yamlencode(each.value.values)]

  depends_on = [helm_release.load_balancer_controller]
}
