output "trail_arn" {
  description = "ARN of the multi-region trail."
  value       = aws_cloudtrail.this.arn
}

output "bucket_name" {
  description = "Bucket of the trail and configuration history."
  value       = aws_s3_bucket.this.id
}

output "guardduty_detector_id" {
  description = "GuardDuty detector of the region."
  value       = aws_guardduty_detector.this.id
}

output "config_recorder_name" {
  description = "AWS Config recorder."
  value       = aws_config_configuration_recorder.this.name
}
