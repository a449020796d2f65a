/**
 * Security: the customer-managed KMS keys every other module encrypts with,
 * and the regional WAFv2 web ACL that the application load balancer uses.
 */

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # One key per purpose, so a key policy (and a compromise) stays narrow.
  keys = {
    eks    = "EKS envelope encryption of Kubernetes secrets, and the cluster's gp3 volumes, for ${var.name}"
    rds    = "Aurora storage, Performance Insights, backups and database secrets for ${var.name}"
    logs   = "CloudWatch Logs groups (VPC flow, EKS, Aurora, WAF, application) and OpenSearch storage for ${var.name}"
    alerts = "Alert topic (SNS) of ${var.name}"
    files  = "Uploaded files (S3, SSE-KMS) of ${var.name}"
  }
}

#### KMS keys

# Key policies are resource policies, written with jsonencode: their
# `Resource = "*"` means "this key", unlike the same wildcard in an identity
# policy (which is what the IAM policy-document checks look for).
locals {
  root_statement = {
    # The account root is the anchor that lets IAM policies grant use of the
    # key; without it the key could become unmanageable.
    Sid       = "AccountRootDelegatesToIam"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }

  administrator_statements = length(var.key_administrator_arns) == 0 ? [] : [{
    Sid       = "KeyAdministrators"
    Effect    = "Allow"
    Principal = { AWS = var.key_administrator_arns }
    Action = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListAliases",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    Resource = "*"
  }]

  # CloudWatch Logs encrypts with its service principal, limited to this
  # account's log groups in this region.
  service_statements = {
    eks = []
    rds = []
    # S3 uses the key with the caller's own permissions (kms:ViaService),
    # granted through IAM by the root statement: no service principal here.
    files = []
    # CloudWatch alarms publish to the encrypted alert topic.
    alerts = [{
      Sid       = "CloudWatchAlarmsPublish"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
      Resource  = "*"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
    logs = [{
      Sid       = "CloudWatchLogsUse"
      Effect    = "Allow"
      Principal = { Service = "logs.${local.region}.${data.aws_partition.current.dns_suffix}" }
      Action = [
        "kms:Decrypt*",
        "kms:Describe*",
        "kms:Encrypt*",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
      ]
      Resource = "*"
      Condition = {
        ArnLike = {
          "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
        }
      }
    }]
  }
}

resource "aws_kms_key" "this" {
  for_each = local.keys

  description             = each.value
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat([local.root_statement], local.administrator_statements, local.service_statements[each.key])
  })

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_kms_alias" "this" {
  for_each = local.keys

  name          = "alias/${var.name}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}

#### WAF web ACL

locals {
  # SizeRestrictions_BODY (8 KB) would block sends the application accepts.
  common_rule_overrides = distinct(concat(["SizeRestrictions_BODY"], var.waf_common_rule_overrides))

  # A Content-Length above var.max_body_bytes: any number with more digits
  # than the limit, or as many digits and a greater value. Built from the
  # limit's digits so the rule follows the variable.
  limit_digits = split("", tostring(var.max_body_bytes))
  content_length_over_limit = format("^0*(%s)$", join("|", concat(
    ["[1-9][0-9]{${length(local.limit_digits)},}"],
    [
      for i, d in local.limit_digits : format("%s[%s-9][0-9]{%d}",
        join("", slice(local.limit_digits, 0, i)),
        tonumber(d) + 1,
        length(local.limit_digits) - i - 1,
      ) if tonumber(d) < 9
    ],
  )))

  # The upload route (POST /api/v1/rooms/{room}/files, a raw body) takes
  # bodies up to var.max_file_bytes (--max-file-bytes); every other route
  # keeps the limit above. The same construction, from that limit's digits.
  upload_path       = "^/api/v1/rooms/[^/]+/files$"
  file_limit_digits = split("", tostring(var.max_file_bytes))
  content_length_over_file_limit = format("^0*(%s)$", join("|", concat(
    ["[1-9][0-9]{${length(local.file_limit_digits)},}"],
    [
      for i, d in local.file_limit_digits : format("%s[%s-9][0-9]{%d}",
        join("", slice(local.file_limit_digits, 0, i)),
        tonumber(d) + 1,
        length(local.file_limit_digits) - i - 1,
      ) if tonumber(d) < 9
    ],
  )))
}

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Palaver ALB protection: rate limit and AWS managed rule groups."
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # Rate-based rule first, so a flood is cut before the managed groups
  # spend capacity on it. The response matches the API's own 429.
  rule {
    name     = "rate-limit-per-ip"
    priority = 1

    action {
      block {
        custom_response {
          response_code = 429
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  # The application accepts request bodies up to var.max_body_bytes (its
  # --max-body-bytes, 64 KiB) and answers 413 itself above that. The common
  # rule set's SizeRestrictions_BODY blocks bodies over 8 KB, so it is
  # counted (always, see local.common_rule_overrides), and this rule refuses
  # what the application would refuse anyway, by its declared length, before
  # it reaches a pod. (An ALB passes WAF only the first 8 KB of a body, so a
  # body-size statement could not see the difference.) The upload route has
  # its own limit, the next rule.
  rule {
    name     = "body-over-application-limit"
    priority = 5

    action {
      block {
        custom_response {
          response_code = 413
        }
      }
    }

    statement {
      and_statement {
        statement {
          regex_match_statement {
            regex_string = local.content_length_over_limit

            field_to_match {
              single_header {
                name = "content-length"
              }
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }

        statement {
          not_statement {
            statement {
              regex_match_statement {
                regex_string = local.upload_path

                field_to_match {
                  uri_path {}
                }

                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-body-over-limit"
      sampled_requests_enabled   = true
    }
  }

  # Uploads: bodies up to var.max_file_bytes (--max-file-bytes, 25 MiB) pass
  # on the upload route only; a larger declared length is refused there.
  rule {
    name     = "upload-over-file-limit"
    priority = 6

    action {
      block {
        custom_response {
          response_code = 413
        }
      }
    }

    statement {
      and_statement {
        statement {
          regex_match_statement {
            regex_string = local.content_length_over_file_limit

            field_to_match {
              single_header {
                name = "content-length"
              }
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }

        statement {
          regex_match_statement {
            regex_string = local.upload_path

            field_to_match {
              uri_path {}
            }

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-upload-over-limit"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"

        dynamic "rule_action_override" {
          for_each = local.common_rule_overrides

          content {
            name = rule_action_override.value

            action_to_use {
              count {}
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesSQLiRuleSet"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesSQLiRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-AWSManagedRulesSQLiRuleSet"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = merge(var.tags, { Name = var.name })
}

#### WAF logging

resource "aws_cloudwatch_log_group" "waf" {
  # WAF only delivers to log groups whose name starts with aws-waf-logs-.
  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this["logs"].arn

  tags = merge(var.tags, { Name = "aws-waf-logs-${var.name}" })
}

data "aws_iam_policy_document" "waf_logs" {
  statement {
    sid       = "WafLogDelivery"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.waf.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "waf" {
  policy_name     = "${var.name}-waf-logs"
  policy_document = data.aws_iam_policy_document.waf_logs.json
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Credentials never reach the logs.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }

  depends_on = [aws_cloudwatch_log_resource_policy.waf]
}
