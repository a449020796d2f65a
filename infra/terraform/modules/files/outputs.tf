output "bucket_name" {
  description = "Name of the files bucket."
  value       = aws_s3_bucket.this.bucket
}

output "bucket_arn" {
  description = "ARN of the files bucket."
  value       = aws_s3_bucket.this.arn
}

output "prefix" {
  description = "Key prefix the application writes under."
  value       = var.prefix
}

output "url" {
  description = "The application's `--file-store` (env PALAVER_FILE_STORE): s3://<bucket>/<prefix>."
  value       = "s3://${aws_s3_bucket.this.bucket}/${var.prefix}"
}

output "access_policy_json" {
  description = "Least-privilege IAM policy of the api role (objects under the prefix, listing under it, the key through S3 only), attached by modules/eks."
  value       = data.aws_iam_policy_document.access.json
}
