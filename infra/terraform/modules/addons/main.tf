/**
 * Add-ons: the cluster's platform Helm releases, applied as a second layer
 * once the cluster exists. Every release that calls AWS runs under the
 * service account the eks module bound to a Pod Identity role.
 */

locals {
  sa = var.pod_identities

  fluent_bit_cloudwatch_output = <<-EOT
    [OUTPUT]
        Name              cloudwatch_logs
        Match             kube.*
        region            ${var.region}
        log_group_name    ${var.application_log_group_name}
        log_stream_prefix ${var.cluster_name}.
        auto_create_group Off
  EOT

  fluent_bit_opensearch_output = var.opensearch_endpoint == null ? "" : <<-EOT
    [OUTPUT]
        Name               opensearch
        Match              kube.*
        Host               ${var.opensearch_endpoint}
        Port               443
        tls                On
        AWS_Auth           On
        AWS_Region         ${var.region}
        Index              ${var.opensearch_index}
        Suppress_Type_Name On
        Replace_Dots       On
  EOT

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
      values = {
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
      }
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
