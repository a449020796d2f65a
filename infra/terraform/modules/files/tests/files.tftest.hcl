# Run from modules/files: terraform init -backend=false && terraform test

# The AWS provider is mocked with the shared data of tests/mocks/aws:
# nothing is created and no credentials are needed.
mock_provider "aws" {
  source = "../../tests/mocks/aws"
}

variables {
  name        = "palaver-test"
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "the_bucket_is_encrypted_private_and_cleans_up_uploads" {
  command = plan

  assert {
    condition = (
      one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms" &&
      one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).kms_master_key_id == var.kms_key_arn
    )
    error_message = "The files are SSE-KMS with the given key."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this.block_public_acls && aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls && aws_s3_bucket_public_access_block.this.restrict_public_buckets
    )
    error_message = "Every public access is blocked."
  }

  assert {
    condition     = anytrue([for r in aws_s3_bucket_lifecycle_configuration.this.rule : try(r.abort_incomplete_multipart_upload[0].days_after_initiation, 0) == 1])
    error_message = "Incomplete multipart uploads are aborted after a day."
  }

  assert {
    condition     = aws_s3_bucket.this.bucket == "palaver-test-files-123456789012" && output.prefix == "files" && aws_s3_bucket.this.force_destroy == false
    error_message = "One bucket per environment and account, kept on destroy unless asked."
  }
}

run "rejects_a_prefix_with_a_slash" {
  command = plan

  variables {
    prefix = "files/../other"
  }

  expect_failures = [var.prefix]
}
