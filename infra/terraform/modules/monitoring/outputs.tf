output "alert_topic_arn" {
  description = "SNS topic of every alert (Alertmanager's sns_configs, CloudWatch alarm actions)."
  value       = aws_sns_topic.alerts.arn
}

output "alarm_names" {
  description = "CloudWatch alarms on the service's SLOs."
  value       = [aws_cloudwatch_metric_alarm.error_ratio.alarm_name, aws_cloudwatch_metric_alarm.waf_blocks.alarm_name, aws_cloudwatch_metric_alarm.database_capacity.alarm_name]
}

output "opensearch_endpoint" {
  description = "Host name of the OpenSearch domain's VPC endpoint (Fluent Bit's opensearch output)."
  value       = aws_opensearch_domain.this.endpoint
}

output "opensearch_dashboards_endpoint" {
  description = "Host and path of OpenSearch Dashboards (reachable from inside the VPC)."
  value       = aws_opensearch_domain.this.dashboard_endpoint
}

output "opensearch_domain_arn" {
  description = "ARN of the OpenSearch domain."
  value       = aws_opensearch_domain.this.arn
}
