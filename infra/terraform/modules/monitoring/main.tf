/**
 * Monitoring that reaches a person, and the ELK part of the design: the
 * alert topic (Alertmanager and CloudWatch alarms publish there; e-mail
 * subscription), CloudWatch alarms on the service's SLOs from the
 * application's own logs, on WAF blocks and on database capacity, and an
 * OpenSearch domain (VPC only, encrypted at rest and in transit,
 * fine-grained access control, Dashboards) that Fluent Bit ships logs to.
 */

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Custom metrics from the application's access log lines
  # (tower-http's "finished processing request", with the JSON fields merged
  # by Fluent Bit's kubernetes filter).
  metric_namespace = "Palaver/${var.name}"
}

#### Alert topic

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = var.kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-alerts" })
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

# The recipient confirms the subscription from the first e-mail.
resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

#### SLO alarms (CloudWatch, independent of the in-cluster Prometheus)

resource "aws_cloudwatch_log_metric_filter" "requests" {
  name           = "${var.name}-requests"
  log_group_name = var.application_log_group_name
  pattern        = "{ $.fields.message = \"finished processing request\" }"

  metric_transformation {
    name          = "Requests"
    namespace     = local.metric_namespace
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_log_metric_filter" "server_errors" {
  name           = "${var.name}-server-errors"
  log_group_name = var.application_log_group_name
  pattern        = "{ $.fields.message = \"finished processing request\" && $.fields.status >= 500 }"

  metric_transformation {
    name          = "ServerErrors"
    namespace     = local.metric_namespace
    value         = "1"
    default_value = "0"
  }
}

# Availability SLO: more than (1 - slo) of requests failing over 5 minutes,
# three periods in a row, with some traffic (quiet periods never alarm).
resource "aws_cloudwatch_metric_alarm" "error_ratio" {
  alarm_name          = "${var.name}-error-ratio"
  alarm_description   = "5xx ratio above the availability SLO's error budget. Runbook: ${var.runbook_base_url}#database-down"
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = 1 - var.availability_slo
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  metric_query {
    id          = "ratio"
    expression  = "IF(requests > 10, errors / requests, 0)"
    label       = "5xx ratio"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = local.metric_namespace
      metric_name = aws_cloudwatch_log_metric_filter.server_errors.metric_transformation[0].name
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = local.metric_namespace
      metric_name = aws_cloudwatch_log_metric_filter.requests.metric_transformation[0].name
      period      = 300
      stat        = "Sum"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-error-ratio" })
}

# A surge of WAF blocks is an attack or a rule blocking real users.
resource "aws_cloudwatch_metric_alarm" "waf_blocks" {
  alarm_name          = "${var.name}-waf-blocks"
  alarm_description   = "WAF blocked requests above ${var.waf_blocked_threshold} per 5 minutes. Runbook: ${var.runbook_base_url}#waf-block-spike"
  namespace           = "AWS/WAFV2"
  metric_name         = "BlockedRequests"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.waf_blocked_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  dimensions = {
    WebACL = var.web_acl_name
    Region = local.region
    Rule   = "ALL"
  }

  tags = merge(var.tags, { Name = "${var.name}-waf-blocks" })
}

# Aurora pinned at its maximum capacity: sends slow down, then fail.
resource "aws_cloudwatch_metric_alarm" "database_capacity" {
  alarm_name          = "${var.name}-database-at-max-capacity"
  alarm_description   = "Aurora Serverless v2 at its maximum ACUs for 15 minutes. Runbook: ${var.runbook_base_url}#database-down"
  namespace           = "AWS/RDS"
  metric_name         = "ACUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 95
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  dimensions = {
    DBClusterIdentifier = var.db_cluster_identifier
  }

  tags = merge(var.tags, { Name = "${var.name}-database-at-max-capacity" })
}

#### OpenSearch (logs: the ELK part of the design)

resource "aws_security_group" "opensearch" {
  name        = "${var.name}-opensearch"
  description = "HTTPS to the OpenSearch domain from the cluster only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-opensearch" })
}

resource "aws_vpc_security_group_ingress_rule" "opensearch" {
  for_each = var.opensearch_client_security_group_ids

  security_group_id            = aws_security_group.opensearch.id
  description                  = "HTTPS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value

  tags = merge(var.tags, { Name = "${var.name}-opensearch-from-${each.key}" })
}

resource "aws_cloudwatch_log_group" "opensearch" {
  for_each = toset(["INDEX_SLOW_LOGS", "SEARCH_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"])

  name              = "/aws/opensearch/${var.name}/${lower(each.key)}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-opensearch-${lower(each.key)}" })
}

data "aws_iam_policy_document" "opensearch_logs" {
  statement {
    sid       = "OpenSearchLogDelivery"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.opensearch : "${group.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "opensearch" {
  policy_name     = "${var.name}-opensearch-logs"
  policy_document = data.aws_iam_policy_document.opensearch_logs.json
}

# IAM decides who may call the domain (Fluent Bit writes, the admin role
# administers); fine-grained access control then maps those IAM roles to
# OpenSearch roles (the admin role is the master user).
data "aws_iam_policy_document" "opensearch_access" {
  statement {
    sid       = "WritersAndAdmins"
    actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
    resources = ["arn:${local.partition}:es:${local.region}:${local.account_id}:domain/${var.opensearch_domain_name}/*"]

    principals {
      type        = "AWS"
      identifiers = concat(var.opensearch_writer_role_arns, [var.opensearch_admin_role_arn])
    }
  }
}

resource "aws_opensearch_domain" "this" {
  domain_name    = var.opensearch_domain_name
  engine_version = var.opensearch_engine_version

  cluster_config {
    instance_type            = var.opensearch_instance_type
    instance_count           = var.opensearch_instance_count
    zone_awareness_enabled   = var.opensearch_instance_count > 1
    dedicated_master_enabled = false

    dynamic "zone_awareness_config" {
      for_each = var.opensearch_instance_count > 1 ? [1] : []

      content {
        availability_zone_count = min(var.opensearch_instance_count, 3)
      }
    }
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.opensearch_volume_size_gib
  }

  vpc_options {
    subnet_ids         = slice(var.subnet_ids, 0, min(var.opensearch_instance_count, length(var.subnet_ids)))
    security_group_ids = [aws_security_group.opensearch.id]
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = var.logs_kms_key_arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }

  advanced_security_options {
    enabled                        = true
    anonymous_auth_enabled         = false
    internal_user_database_enabled = false

    master_user_options {
      master_user_arn = var.opensearch_admin_role_arn
    }
  }

  access_policies = data.aws_iam_policy_document.opensearch_access.json

  log_publishing_options {
    log_type                 = "INDEX_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["INDEX_SLOW_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "SEARCH_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["SEARCH_SLOW_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["ES_APPLICATION_LOGS"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "AUDIT_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["AUDIT_LOGS"].arn
    enabled                  = true
  }

  tags = merge(var.tags, { Name = var.opensearch_domain_name })

  depends_on = [aws_cloudwatch_log_resource_policy.opensearch]
}
