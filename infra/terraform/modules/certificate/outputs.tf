output "arn" {
  description = "ARN of the issued certificate of host_name (validated, when requested here), for the ALB's HTTPS listener."
  value       = local.request ? one(aws_acm_certificate_validation.this[*].certificate_arn) : one(data.aws_acm_certificate.this[*].arn)
}

output "host_name" {
  description = "The public host name (the input, passed through)."
  value       = var.host_name
}

output "requested" {
  description = "Whether the certificate was requested and DNS-validated here (true) or looked up (false)."
  value       = local.request
}
