/**
 * What the account's CI shares across environments: the GitHub Actions OIDC
 * provider, the image repository (immutable tags, scan on push, KMS) and
 * the two account-level CI roles, plan (pull requests, read-only) and
 * release (main and release tags: push images). The per-environment roles
 * (apply, deploy) are in modules/ci.
 */

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  oidc_host  = "token.actions.githubusercontent.com"
}

#### GitHub OIDC provider

# IAM validates GitHub's certificate through its own trust store; the
# thumbprint is kept for older SDKs that still require one.
resource "aws_iam_openid_connect_provider" "github" {
  url             = "https://${local.oidc_host}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]

  tags = merge(var.tags, { Name = "github-actions" })
}

#### Image repository

resource "aws_kms_key" "ecr" {
  description             = "Image repository ${var.repository_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  # The account root delegates to IAM: the release and deploy roles get the
  # key through their own policies (a resource policy: "*" is this key).
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountRootDelegatesToIam"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })

  tags = merge(var.tags, { Name = "${var.repository_name}-ecr" })
}

resource "aws_kms_alias" "ecr" {
  name          = "alias/${var.repository_name}-ecr"
  target_key_id = aws_kms_key.ecr.key_id
}

resource "aws_ecr_repository" "this" {
  name                 = var.repository_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }

  tags = merge(var.tags, { Name = var.repository_name })
}

# Untagged manifests (superseded per-platform images, old attestations)
# expire; release tags stay.
resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 30 days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

#### Account-level CI roles

data "aws_iam_policy_document" "trust" {
  for_each = {
    # Plans run on pull requests from branches of this repository.
    plan = ["repo:${var.github_repository}:pull_request"]
    # Images are pushed from main and from release tags only.
    release = ["repo:${var.github_repository}:ref:refs/heads/main", "repo:${var.github_repository}:ref:refs/tags/v*"]
  }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "${local.oidc_host}:sub"
      values   = each.value
    }
  }
}

resource "aws_iam_role" "plan" {
  name               = "palaver-ci-plan"
  description        = "GitHub Actions (pull requests): terraform plan, read-only"
  assume_role_policy = data.aws_iam_policy_document.trust["plan"].json

  tags = merge(var.tags, { Name = "palaver-ci-plan" })
}

resource "aws_iam_role_policy_attachment" "plan" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

# A plan reads the state and takes no lock (-lock=false), so it needs only
# read access to the state objects (and decrypting them).
data "aws_iam_policy_document" "plan_state" {
  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket}", "arn:${local.partition}:s3:::${var.state_bucket}/*"]
  }
}

resource "aws_iam_role_policy" "plan_state" {
  name   = "read-state"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan_state.json
}

resource "aws_iam_role" "release" {
  name               = "palaver-ci-release"
  description        = "GitHub Actions (main, release tags): push and sign images in ${var.repository_name}"
  assume_role_policy = data.aws_iam_policy_document.trust["release"].json

  tags = merge(var.tags, { Name = "palaver-ci-release" })
}

data "aws_iam_policy_document" "release" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushToTheRepository"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "EncryptImages"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.ecr.arn]
  }
}

resource "aws_iam_role_policy" "release" {
  name   = "release"
  role   = aws_iam_role.release.id
  policy = data.aws_iam_policy_document.release.json
}
