# Run from modules/certificate: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  host_name = "chat.example.com"
}

run "without_a_zone_the_issued_certificate_is_looked_up" {
  command = plan

  assert {
    condition = (
      length(aws_acm_certificate.this) == 0 && length(aws_route53_record.validation) == 0 &&
      data.aws_acm_certificate.this[0].domain == "chat.example.com" && length(data.aws_acm_certificate.this[0].statuses) == 1 && contains(data.aws_acm_certificate.this[0].statuses, "ISSUED") &&
      output.arn == "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    )
    error_message = "Without a zone nothing is requested, and the issued certificate of host_name is the output."
  }
}

run "an_empty_zone_is_no_zone" {
  command = plan

  variables {
    route53_zone_id = ""
  }

  assert {
    condition     = output.requested == false && length(aws_acm_certificate.this) == 0
    error_message = "An unset GitHub variable (\"\") must not request a certificate."
  }
}

run "with_a_zone_it_is_requested_and_validated_by_dns" {
  command = plan

  variables {
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
  }

  assert {
    condition = (
      aws_acm_certificate.this[0].domain_name == "chat.example.com" && aws_acm_certificate.this[0].validation_method == "DNS" &&
      aws_route53_record.validation[0].zone_id == "Z0123456789ABCDEFGHIJ" && length(aws_acm_certificate_validation.this) == 1 &&
      length(data.aws_acm_certificate.this) == 0
    )
    error_message = "With a zone the certificate of host_name is requested, its DNS record written in the zone, and its issue awaited."
  }
}

run "rejects_a_url_for_a_host_name" {
  command = plan

  variables {
    host_name = "https://chat.example.com/"
  }

  expect_failures = [var.host_name]
}
