# Run from modules/security: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  name = "palaver-test"
}

run "keys_rotate_and_trust_no_wildcard_principal" {
  command = plan

  assert {
    condition     = length(aws_kms_key.this) == 5 && alltrue([for k in aws_kms_key.this : k.enable_key_rotation])
    error_message = "Every KMS key must have automatic rotation on."
  }

  assert {
    condition     = alltrue([for k in aws_kms_key.this : !strcontains(k.policy, "\"AWS\":\"*\"") && !strcontains(k.policy, "\"Principal\":\"*\"")])
    error_message = "No key policy may trust a wildcard principal."
  }

  assert {
    condition     = strcontains(aws_kms_key.this["logs"].policy, "kms:EncryptionContext:aws:logs:arn")
    error_message = "The logs key must be usable by CloudWatch Logs only for this account's log groups."
  }
}

run "waf_has_the_managed_rule_groups_a_rate_limit_and_logging" {
  command = plan

  assert {
    condition = length(setsubtract(
      ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet", "rate-limit-per-ip"],
      [for r in aws_wafv2_web_acl.this.rule : r.name],
    )) == 0
    error_message = "The web ACL must carry the common, known-bad-inputs and SQLi rule groups and the rate-based rule."
  }

  assert {
    condition     = anytrue([for r in aws_wafv2_web_acl.this.rule : try(r.statement[0].rate_based_statement[0].limit, 0) == 2000])
    error_message = "The rate-based rule must use waf_rate_limit."
  }

  assert {
    condition     = aws_wafv2_web_acl.this.scope == "REGIONAL" && startswith(aws_cloudwatch_log_group.waf.name, "aws-waf-logs-")
    error_message = "A regional ACL, logging to an aws-waf-logs-* group."
  }
}

run "certificate_adds_the_https_annotations" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition     = output.alb_ingress_annotations["alb.ingress.kubernetes.io/certificate-arn"] == var.certificate_arn
    error_message = "The certificate ARN must reach the ingress annotations."
  }
}

run "rejects_a_too_low_rate_limit" {
  command = plan

  variables {
    waf_rate_limit = 10
  }

  expect_failures = [var.waf_rate_limit]
}

run "waf_lets_through_every_body_the_application_accepts" {
  command = plan

  assert {
    condition     = contains([for o in one([for r in aws_wafv2_web_acl.this.rule : r if r.name == "AWSManagedRulesCommonRuleSet"]).statement[0].managed_rule_group_statement[0].rule_action_override : o.name], "SizeRestrictions_BODY")
    error_message = "SizeRestrictions_BODY (8 KB) must be counted, not blocking: the application accepts 64 KiB bodies."
  }

  assert {
    condition = (
      !can(regex(local.content_length_over_limit, "65536")) && !can(regex(local.content_length_over_limit, "8193")) && !can(regex(local.content_length_over_limit, "9999")) &&
      can(regex(local.content_length_over_limit, "65537")) && can(regex(local.content_length_over_limit, "70000")) && can(regex(local.content_length_over_limit, "1048576"))
    )
    error_message = "The body-size rule must refuse exactly the Content-Lengths above the application's 64 KiB."
  }
}

run "uploads_pass_up_to_max_file_bytes_on_the_upload_route_only" {
  command = plan

  assert {
    condition = alltrue([
      for r in aws_wafv2_web_acl.this.rule : (
        can(regex(r.statement[0].and_statement[0].statement[0].regex_match_statement[0].regex_string, "26214401")) &&
        !can(regex(r.statement[0].and_statement[0].statement[0].regex_match_statement[0].regex_string, "26214400")) &&
        r.statement[0].and_statement[0].statement[1].regex_match_statement[0].regex_string == "^/api/v1/rooms/[^/]+/files$"
      ) if r.name == "upload-over-file-limit"
    ]) && contains([for r in aws_wafv2_web_acl.this.rule : r.name], "upload-over-file-limit")
    error_message = "The upload route must refuse exactly the Content-Lengths over max_file_bytes (25 MiB)."
  }

  assert {
    condition = alltrue([
      for r in aws_wafv2_web_acl.this.rule : (
        can(regex(r.statement[0].and_statement[0].statement[0].regex_match_statement[0].regex_string, "65537")) &&
        r.statement[0].and_statement[0].statement[1].not_statement[0].statement[0].regex_match_statement[0].regex_string == "^/api/v1/rooms/[^/]+/files$"
      ) if r.name == "body-over-application-limit"
    ])
    error_message = "Every route but the upload route must keep the max_body_bytes limit."
  }
}
