/**
 * EKS: the cluster (private endpoint, public endpoint limited to given
 * CIDRs, KMS-encrypted secrets, control-plane logs), managed node groups
 * the cluster autoscaler can discover, the EKS add-ons, and one
 * least-privilege Pod Identity role per workload that calls AWS.
 */

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Add-ons the nodes need to become Ready (networking, credentials) go in
  # before the node groups; the ones that schedule pods go in after.
  addons_before_nodes = toset(["vpc-cni", "kube-proxy", "eks-pod-identity-agent"])
  addons_after_nodes  = toset(["coredns", "aws-ebs-csi-driver"])

  # Without the network policy agent (off by default in the vpc-cni add-on)
  # the API server accepts NetworkPolicies and nothing enforces them.
  addon_configuration = {
    vpc-cni = jsonencode({
      enableNetworkPolicy = "true"
      nodeAgent           = { enablePolicyEventLogs = "false" }
    })
  }

  autoscaler_tags = {
    "k8s.io/cluster-autoscaler/enabled"     = "true"
    "k8s.io/cluster-autoscaler/${var.name}" = "owned"
  }
}

#### Control-plane IAM role

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json

  tags = merge(var.tags, { Name = "${var.name}-cluster" })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# The control plane uses the key for envelope encryption of secrets; the key
# policy delegates to IAM, so this is the grant that scopes it to one key.
data "aws_iam_policy_document" "cluster_encryption" {
  statement {
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
    resources = [var.secrets_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "cluster_encryption" {
  name   = "secrets-envelope-encryption"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_encryption.json
}

#### Cluster

resource "aws_cloudwatch_log_group" "cluster" {
  # EKS writes to this exact name; creating it first sets retention and KMS.
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-control-plane" })
}

resource "aws_eks_cluster" "this" {
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = false
  }

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = length(var.public_access_cidrs) > 0
    public_access_cidrs     = length(var.public_access_cidrs) > 0 ? var.public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = var.secrets_kms_key_arn
    }
  }

  tags = merge(var.tags, { Name = var.name })

  depends_on = [
    aws_cloudwatch_log_group.cluster,
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_encryption,
  ]
}

#### Cluster access

locals {
  # Keys known at plan time: the roles given as input by their ARN, the CI
  # apply role (created in the same run) by its name.
  admin_roles = merge({ for arn in var.admin_role_arns : arn => arn }, var.ci_admin_role_arns)
}

resource "aws_eks_access_entry" "admin" {
  for_each = local.admin_roles

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  type          = "STANDARD"

  tags = merge(var.tags, { Name = "${var.name}-admin" })
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = local.admin_roles

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.key].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# CI roles that deploy the application: an access entry each, with the
# Kubernetes edit policy in the application's namespace only (not the
# cluster). The Namespace object itself and cluster-level objects belong to
# the add-ons layer, applied with an admin role.
resource "aws_eks_access_entry" "namespace" {
  for_each = var.namespace_deploy_role_arns

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  type          = "STANDARD"

  tags = merge(var.tags, { Name = "${var.name}-deploy-${each.key}" })
}

resource "aws_eks_access_policy_association" "namespace" {
  for_each = var.namespace_deploy_role_arns

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.namespace[each.key].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

  access_scope {
    type       = "namespace"
    namespaces = [var.app_namespace]
  }
}

# The runners that reach the private API endpoint (modules/ci) connect from
# this security group; the control plane admits them on 443 only.
resource "aws_vpc_security_group_ingress_rule" "api_from_runners" {
  for_each = var.api_client_security_group_ids

  security_group_id            = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  description                  = "Kubernetes API from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value

  tags = merge(var.tags, { Name = "${var.name}-api-from-${each.key}" })
}

#### Node IAM role

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json

  tags = merge(var.tags, { Name = "${var.name}-node" })
}

# The CNI policy stays on the node role: aws-node must assign pod IPs before
# the Pod Identity agent (itself a pod) can hand out credentials.
# SSM replaces SSH for break-glass access; no key pair is ever set.
resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

#### Managed node groups

resource "aws_launch_template" "node" {
  for_each = var.node_groups

  name_prefix            = "${var.name}-${each.key}-"
  description            = "Nodes of ${var.name}/${each.key}: IMDSv2 only, encrypted gp3 root volume"
  update_default_version = true

  # Hop limit 1 keeps pods (one hop further) away from the node role's
  # credentials; workloads get theirs from Pod Identity.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = each.value.disk_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  dynamic "tag_specifications" {
    for_each = toset(["instance", "volume", "network-interface"])

    content {
      resource_type = tag_specifications.value
      tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_eks_node_group" "this" {
  for_each = var.node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = each.value.instance_types
  capacity_type   = each.value.capacity_type
  ami_type        = each.value.ami_type
  labels          = each.value.labels

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable_percentage = 33
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints

    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = merge(var.tags, local.autoscaler_tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    # The cluster autoscaler owns desired_size once the group exists.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.before_nodes,
  ]
}

# Node group tags do not reach the Auto Scaling group; these do. They are what
# the cluster autoscaler's auto-discovery (and scale-from-zero) reads.
locals {
  asg_tags = merge([
    for ng_name, ng in var.node_groups : merge(
      { for key, value in local.autoscaler_tags : "${ng_name}/${key}" => { node_group = ng_name, key = key, value = value } },
      {
        for label, value in ng.labels :
        "${ng_name}/k8s.io/cluster-autoscaler/node-template/label/${label}" => {
          node_group = ng_name
          key        = "k8s.io/cluster-autoscaler/node-template/label/${label}"
          value      = value
        }
      },
    )
  ]...)
}

resource "aws_autoscaling_group_tag" "this" {
  for_each = local.asg_tags

  autoscaling_group_name = aws_eks_node_group.this[each.value.node_group].resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.value.key
    value               = each.value.value
    propagate_at_launch = false
  }
}

#### EKS add-ons

resource "aws_eks_addon" "before_nodes" {
  for_each = local.addons_before_nodes

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  addon_version               = lookup(var.addon_versions, each.key, null)
  configuration_values        = lookup(local.addon_configuration, each.key, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_eks_addon" "after_nodes" {
  for_each = local.addons_after_nodes

  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  addon_version               = lookup(var.addon_versions, each.key, null)
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })

  depends_on = [
    aws_eks_node_group.this,
    aws_eks_pod_identity_association.this,
  ]
}

#### Application log group

# Fluent Bit ships container logs here (see modules/addons).
resource "aws_cloudwatch_log_group" "application" {
  name              = "/aws/eks/${var.name}/application"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-application" })
}

#### Pod Identity roles

locals {
  # The api role (its own service account) stores uploaded files in S3
  # (api_policy_jsons) and, with IAM database authentication, connects
  # like the other roles.
  api_identity = length(var.api_policy_jsons) > 0 || var.db_iam_auth != null

  # Every workload that calls AWS, by role name: its service account. The
  # application needs a role only for IAM database authentication; the api
  # role for the files bucket too.
  pod_identities = {
    for name, sa in {
      cluster-autoscaler           = { namespace = "kube-system", service_account = "cluster-autoscaler" }
      aws-load-balancer-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller" }
      external-secrets             = { namespace = "external-secrets", service_account = "external-secrets" }
      fluent-bit                   = { namespace = "logging", service_account = "fluent-bit" }
      ebs-csi-driver               = { namespace = "kube-system", service_account = "ebs-csi-controller-sa" }
      alertmanager                 = { namespace = "monitoring", service_account = "alertmanager" }
      application                  = { namespace = var.app_namespace, service_account = var.app_service_account }
      api                          = { namespace = var.app_namespace, service_account = var.api_service_account }
    } : name => sa if(name != "application" || var.db_iam_auth != null) && (name != "api" || local.api_identity)
  }

  # Their permissions: our own least-privilege documents (the keys depend on
  # variables only, so for_each never waits on an unknown value) ...
  inline_policies = {
    for name, json in {
      cluster-autoscaler           = data.aws_iam_policy_document.cluster_autoscaler.json
      aws-load-balancer-controller = data.aws_iam_policy_document.load_balancer_controller.json
      external-secrets             = data.aws_iam_policy_document.external_secrets.json
      fluent-bit                   = data.aws_iam_policy_document.fluent_bit.json
      alertmanager                 = data.aws_iam_policy_document.alertmanager.json
      ebs-csi-driver               = data.aws_iam_policy_document.ebs_csi_kms.json
      application                  = one(data.aws_iam_policy_document.application[*].json)
      api                          = one(data.aws_iam_policy_document.api[*].json)
    } : name => json if(name != "application" || var.db_iam_auth != null) && (name != "api" || local.api_identity)
  }

  # ... or, for the EBS CSI driver, the AWS managed policy written for it.
  managed_policies = {
    ebs-csi-driver = "service-role/AmazonEBSCSIDriverPolicy"
  }
}

# Only the EKS Pod Identity service, acting for this cluster, may assume the
# roles; which service account gets which role is the association below.
data "aws_iam_policy_document" "pod_identity_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_eks_cluster.this.arn]
    }
  }
}

resource "aws_iam_role" "pod_identity" {
  for_each = local.pod_identities

  name               = "${var.name}-${each.key}"
  description        = "Pod Identity role of ${each.value.namespace}/${each.value.service_account} on ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_iam_role_policy" "pod_identity" {
  for_each = local.inline_policies

  name   = each.key
  role   = aws_iam_role.pod_identity[each.key].id
  policy = each.value
}

resource "aws_iam_role_policy_attachment" "pod_identity" {
  for_each = local.managed_policies

  role       = aws_iam_role.pod_identity[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_eks_pod_identity_association" "this" {
  for_each = local.pod_identities

  cluster_name    = aws_eks_cluster.this.name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.pod_identity[each.key].arn

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

#### Pod Identity policies

# Cluster autoscaler: read the ASGs, but scale and terminate only the groups
# tagged as owned by this cluster.
data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid = "DescribeScalingState"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeOwnNodegroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${local.partition}:eks:${local.region}:${local.account_id}:nodegroup/${var.name}/*/*"]
  }

  statement {
    sid = "ScaleOwnGroupsOnly"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.name}"
      values   = ["owned"]
    }
  }
}

# External Secrets: read exactly the secrets the release needs (the
# application's connection secret, the master secret for the database
# bootstrap hook, the bus secret when there is one), and decrypt them only
# through Secrets Manager.
locals {
  readable_secret_arns = concat([var.app_secret_arn], var.extra_readable_secret_arns)
}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid = "ReadReleaseSecrets"
    actions = [
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:GetSecretValue",
      "secretsmanager:ListSecretVersionIds",
    ]
    resources = local.readable_secret_arns
  }

  statement {
    sid       = "DecryptReleaseSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.app_secret_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:SecretARN"
      values   = local.readable_secret_arns
    }
  }
}

# EBS CSI driver: on top of its managed policy, use the storage key for the
# encrypted gp3 volumes of the add-ons layer's StorageClass (grants only for
# AWS resources, i.e. EC2 attaching the volume).
data "aws_iam_policy_document" "ebs_csi_kms" {
  statement {
    sid       = "GrantsForVolumes"
    actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    resources = [var.secrets_kms_key_arn]

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid       = "EncryptVolumes"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
    resources = [var.secrets_kms_key_arn]
  }
}

# Alertmanager: publish to the alert topic only (its sns_configs receiver).
data "aws_iam_policy_document" "alertmanager" {
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [var.alert_topic_arn]
  }

  statement {
    sid       = "EncryptAlerts"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.alert_topic_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }
}

# Fluent Bit: write to the application log group (and OpenSearch, when set).
data "aws_iam_policy_document" "fluent_bit" {
  statement {
    sid       = "WriteApplicationLogs"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.application.arn, "${aws_cloudwatch_log_group.application.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.opensearch_domain_arn == null ? [] : [var.opensearch_domain_arn]

    content {
      sid       = "WriteOpenSearch"
      actions   = ["es:ESHttpGet", "es:ESHttpPost", "es:ESHttpPut"]
      resources = ["${statement.value}/*"]
    }
  }
}

# The application: nothing but IAM authentication as its own database user.
data "aws_iam_policy_document" "application" {
  count = var.db_iam_auth == null ? 0 : 1

  statement {
    sid       = "ConnectAsApplicationUser"
    actions   = ["rds-db:connect"]
    resources = ["arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${var.db_iam_auth.cluster_resource_id}/${var.db_iam_auth.username}"]
  }
}

# The api role: the given documents (modules/files: its bucket and prefix
# only) and, with IAM database authentication, the application's.
data "aws_iam_policy_document" "api" {
  count = local.api_identity ? 1 : 0

  source_policy_documents = concat(
    [for name in sort(keys(var.api_policy_jsons)) : var.api_policy_jsons[name]],
    data.aws_iam_policy_document.application[*].json,
  )
}

# AWS Load Balancer Controller: the upstream policy (kubernetes-sigs/
# aws-load-balancer-controller docs/install/iam_policy.json), with the
# partition, region and account filled in. Mutations are limited to load
# balancers, target groups and security groups carrying the controller's
# `elbv2.k8s.aws/cluster` tag.
locals {
  elb_arn = "arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}"
  ec2_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  elb_taggable = [
    "${local.elb_arn}:targetgroup/*/*",
    "${local.elb_arn}:loadbalancer/net/*/*",
    "${local.elb_arn}:loadbalancer/app/*/*",
  ]
}

data "aws_iam_policy_document" "load_balancer_controller" {
  statement {
    sid       = "CreateElbServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid = "Describe"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeVpcs",
      "ec2:DescribeVpcPeeringConnections",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeTags",
      "ec2:DescribeRouteTables",
      "ec2:DescribeCoipPools",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeLoadBalancerAttributes",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeListenerAttributes",
      "elasticloadbalancing:DescribeListenerCertificates",
      "elasticloadbalancing:DescribeSSLPolicies",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTrustStores",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ReadVpcSecurityGroupsAndCoipPools"
    actions   = ["ec2:GetSecurityGroupsForVpc", "ec2:GetCoipPoolUsage"]
    resources = ["${local.ec2_arn}:vpc/*", "${local.ec2_arn}:security-group/*", "${local.ec2_arn}:coip-pool/*"]
  }

  statement {
    sid = "ListCertificates"
    actions = [
      "acm:ListCertificates",
      "iam:ListServerCertificates",
      "shield:GetSubscriptionState",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ReadCertificatesAndProtection"
    actions = [
      "acm:DescribeCertificate",
      "cognito-idp:DescribeUserPoolClient",
      "iam:GetServerCertificate",
      "shield:DescribeProtection",
      "wafv2:GetWebACL",
      "wafv2:GetWebACLForResource",
    ]
    resources = [
      "arn:${local.partition}:acm:${local.region}:${local.account_id}:certificate/*",
      "arn:${local.partition}:cognito-idp:${local.region}:${local.account_id}:userpool/*",
      "arn:${local.partition}:iam::${local.account_id}:server-certificate/*",
      "arn:${local.partition}:shield::${local.account_id}:protection/*",
      "arn:${local.partition}:wafv2:${local.region}:${local.account_id}:regional/webacl/*/*",
      "${local.elb_arn}:loadbalancer/app/*/*",
    ]
  }

  statement {
    sid       = "AttachWebAclToOwnLoadBalancers"
    actions   = ["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"]
    resources = ["arn:${local.partition}:wafv2:${local.region}:${local.account_id}:regional/webacl/*/*", "${local.elb_arn}:loadbalancer/app/*/*"]
  }

  statement {
    sid       = "CreateSecurityGroups"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["${local.ec2_arn}:security-group/*", "${local.ec2_arn}:vpc/*"]
  }

  statement {
    sid       = "TagSecurityGroupsOnCreate"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid       = "RetagOwnSecurityGroups"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  # Node security groups (not created by the controller) get rules added so
  # the load balancer can reach the targets.
  statement {
    sid       = "ManageSecurityGroupRules"
    actions   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    resources = ["${local.ec2_arn}:security-group/*"]
  }

  statement {
    sid       = "DeleteOwnSecurityGroups"
    actions   = ["ec2:DeleteSecurityGroup"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid       = "CreateTaggedLoadBalancers"
    actions   = ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"]
    resources = local.elb_taggable

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid = "ManageListenersAndRules"
    actions = [
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:CreateRule",
      "elasticloadbalancing:DeleteRule",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:listener/net/*/*/*",
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener-rule/net/*/*/*",
      "${local.elb_arn}:listener-rule/app/*/*/*",
    ]
  }

  statement {
    sid       = "RetagOwnLoadBalancers"
    actions   = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    resources = local.elb_taggable

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid     = "TagListenersAndRules"
    actions = ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    resources = [
      "${local.elb_arn}:listener/net/*/*/*",
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener-rule/net/*/*/*",
      "${local.elb_arn}:listener-rule/app/*/*/*",
    ]
  }

  statement {
    sid = "ModifyOwnLoadBalancers"
    actions = [
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:SetIpAddressType",
      "elasticloadbalancing:SetSecurityGroups",
      "elasticloadbalancing:SetSubnets",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyListenerAttributes",
    ]
    resources = local.elb_taggable

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid       = "TagOnCreate"
    actions   = ["elasticloadbalancing:AddTags"]
    resources = local.elb_taggable

    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateTargetGroup", "CreateLoadBalancer"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid       = "RegisterTargets"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = ["${local.elb_arn}:targetgroup/*/*"]
  }

  statement {
    sid = "ManageListenerSettings"
    actions = [
      "elasticloadbalancing:SetWebAcl",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:AddListenerCertificates",
      "elasticloadbalancing:RemoveListenerCertificates",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:SetRulePriorities",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:listener/net/*/*/*",
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener-rule/net/*/*/*",
      "${local.elb_arn}:listener-rule/app/*/*/*",
    ]
  }
}
