/**
 * CI access to one environment, least privilege, GitHub OIDC only:
 *
 * - apply role: trusted for workflow runs in the GitHub environment
 *   `terraform-<env>` of the repository; administers the stack (and is
 *   given cluster-admin by the eks module, to install the add-ons).
 * - deploy role: trusted for the GitHub environment `<env>`; may read the
 *   release's values parameter, describe the cluster, pull from ECR, and
 *   (through an EKS access entry scoped to the application's namespace,
 *   made by the eks module) run `helm upgrade` there.
 * - the runner that reaches the private API endpoint: an AWS CodeBuild
 *   project in the private subnets registered as a GitHub Actions runner
 *   (`runs-on: codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}`),
 *   whose security group the control plane admits on 443.
 * - the release values: one SSM parameter holding every value the Helm
 *   release needs from the infrastructure (from terraform outputs, never
 *   hand-copied), which the deploy job reads.
 */

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  region       = data.aws_region.current.name
  oidc_host    = "token.actions.githubusercontent.com"
  runner_name  = "${var.name}-deploy-runner"
  parameter    = "/${var.name}/release/helm-values"
  parameter_id = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.parameter}"
}

#### Roles trusted for one GitHub environment each

data "aws_iam_policy_document" "github_trust" {
  for_each = {
    apply  = "terraform-${var.environment}"
    deploy = var.environment
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs that run in this repository's GitHub environment: the
    # environment's protection rules (reviewers, branches) gate the role.
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["repo:${var.github_repository}:environment:${each.value}"]
    }
  }
}

resource "aws_iam_role" "apply" {
  name                 = "${var.name}-ci-apply"
  description          = "GitHub Actions (environment terraform-${var.environment}): terraform apply of ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["apply"].json
  max_session_duration = 7200

  tags = merge(var.tags, { Name = "${var.name}-ci-apply" })
}

# Applying the stack touches most services of the account; the role is
# confined by its trust (one protected GitHub environment), not its policy.
resource "aws_iam_role_policy_attachment" "apply" {
  role       = aws_iam_role.apply.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AdministratorAccess"
}

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-ci-deploy"
  description          = "GitHub Actions (environment ${var.environment}): helm upgrade of the application on ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["deploy"].json
  max_session_duration = 3600

  tags = merge(var.tags, { Name = "${var.name}-ci-deploy" })
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "DescribeTheCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "ReadTheReleaseValues"
    actions   = ["ssm:GetParameter"]
    resources = [local.parameter_id]
  }

  statement {
    sid       = "DecryptTheReleaseValues"
    actions   = ["kms:Decrypt"]
    resources = [var.logs_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "ReadTheImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "DecryptTheImage"
    actions   = ["kms:Decrypt"]
    resources = [var.ecr_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}

#### Release values (one source of truth for the Helm release)

resource "aws_ssm_parameter" "helm_values" {
  name        = local.parameter
  description = "Helm values (JSON, which helm reads as YAML) of the Palaver release on ${var.name} that come from the infrastructure (written by terraform apply; read by the deploy workflow)."
  type        = "SecureString"
  key_id      = var.logs_kms_key_arn
  tier        = "Advanced"
  value       = jsonencode(var.helm_values)

  tags = merge(var.tags, { Name = "${var.name}-helm-values" })
}

#### Runner inside the VPC (reaches the private API endpoint)

resource "aws_security_group" "runner" {
  name        = local.runner_name
  description = "CI deploy runner: egress only (Kubernetes API, ECR, GitHub through the NAT)"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.runner_name })
}

resource "aws_vpc_security_group_egress_rule" "runner" {
  security_group_id = aws_security_group.runner.id
  description       = "HTTPS out: the Kubernetes API, AWS APIs, GitHub, the environment's URL"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = merge(var.tags, { Name = "${local.runner_name}-https" })
}

resource "aws_cloudwatch_log_group" "runner" {
  name              = "/aws/codebuild/${local.runner_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = local.runner_name })
}

data "aws_iam_policy_document" "runner_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "runner" {
  name               = local.runner_name
  description        = "CodeBuild-hosted GitHub Actions runner of ${var.name}: network placement and logs only (the job assumes the deploy role through OIDC)"
  assume_role_policy = data.aws_iam_policy_document.runner_assume.json

  tags = merge(var.tags, { Name = local.runner_name })
}

data "aws_iam_policy_document" "runner" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runner.arn}:*"]
  }

  statement {
    sid       = "UseTheGitHubConnection"
    actions   = ["codeconnections:GetConnectionToken", "codeconnections:GetConnection", "codestar-connections:GetConnectionToken", "codestar-connections:GetConnection"]
    resources = [var.github_connection_arn]
  }

  # CodeBuild creates and removes the ENI of each build in the private
  # subnets (the Describe calls take no resource).
  statement {
    sid = "DescribeTheVpc"
    actions = [
      "ec2:DescribeDhcpOptions",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]
  }

  statement {
    sid     = "BuildEnisInTheRunnerSubnets"
    actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"]
    resources = concat(
      ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*", "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${aws_security_group.runner.id}"],
      [for id in var.private_subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
    )
  }

  statement {
    sid       = "AttachBuildEnis"
    actions   = ["ec2:CreateNetworkInterfacePermission"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:AuthorizedService"
      values   = ["codebuild.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "runner" {
  name   = "runner"
  role   = aws_iam_role.runner.id
  policy = data.aws_iam_policy_document.runner.json
}

resource "aws_codebuild_project" "runner" {
  name           = local.runner_name
  description    = "GitHub Actions runner for the deploy job of ${var.name} (private EKS API endpoint)"
  service_role   = aws_iam_role.runner.arn
  build_timeout  = 60
  encryption_key = var.logs_kms_key_arn

  source {
    type     = "GITHUB"
    location = "https://github.com/${var.github_repository}.git"

    auth {
      type     = "CODECONNECTIONS"
      resource = var.github_connection_arn
    }
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type            = "LINUX_CONTAINER"
    compute_type    = "BUILD_GENERAL1_MEDIUM"
    image           = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    privileged_mode = false
  }

  vpc_config {
    vpc_id             = var.vpc_id
    subnets            = var.private_subnet_ids
    security_group_ids = [aws_security_group.runner.id]
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.runner.name
    }
  }

  tags = merge(var.tags, { Name = local.runner_name })
}

# Registers the project as a runner for queued workflow jobs of the
# repository that ask for it by name.
resource "aws_codebuild_webhook" "runner" {
  project_name = aws_codebuild_project.runner.name
  build_type   = "BUILD"

  filter_group {
    filter {
      type    = "EVENT"
      pattern = "WORKFLOW_JOB_QUEUED"
    }
  }
}
