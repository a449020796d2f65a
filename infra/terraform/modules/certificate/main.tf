/**
 * Certificate: the ACM certificate of the environment's public host name,
 * the one value both the ALB's HTTPS listener and the release's Ingress
 * host come from. With a Route 53 zone it is requested and validated by
 * DNS in that zone; without one, the issued certificate of that host
 * (requested and validated by hand) is looked up.
 */

locals {
  # An unset GitHub variable arrives as "": the same as null.
  request = var.route53_zone_id != null && var.route53_zone_id != ""
}

#### Requested and validated in Route 53 (the zone is given)

resource "aws_acm_certificate" "this" {
  count = local.request ? 1 : 0

  domain_name       = var.host_name
  validation_method = "DNS"

  # A renamed host gets its new certificate before the old one goes.
  lifecycle {
    create_before_destroy = true
  }

  tags = merge(var.tags, { Name = var.host_name })
}

# One host name, so one validation record.
resource "aws_route53_record" "validation" {
  count = local.request ? 1 : 0

  zone_id         = var.route53_zone_id
  name            = tolist(aws_acm_certificate.this[0].domain_validation_options)[0].resource_record_name
  type            = tolist(aws_acm_certificate.this[0].domain_validation_options)[0].resource_record_type
  records         = [tolist(aws_acm_certificate.this[0].domain_validation_options)[0].resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

# Waits until ACM has issued the certificate, so the ALB never gets one
# still pending validation.
resource "aws_acm_certificate_validation" "this" {
  count = local.request ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = aws_route53_record.validation[*].fqdn
}

#### Looked up (no zone: validated outside Terraform)

data "aws_acm_certificate" "this" {
  count = local.request ? 0 : 1

  domain      = var.host_name
  statuses    = ["ISSUED"]
  most_recent = true
}
