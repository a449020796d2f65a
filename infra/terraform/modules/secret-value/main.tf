/**
 * Writes a JSON value with a generated `password` into an existing Secrets
 * Manager secret. The password is an ephemeral value from Secrets Manager
 * (GetRandomPassword) written through a write-only argument: it is in
 * neither the plan nor the state. Increase value_version to write a new
 * value (a rotation).
 */

ephemeral "aws_secretsmanager_random_password" "this" {
  password_length     = var.password_length
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id                = var.secret_id
  secret_string_wo         = jsonencode(merge(var.value, { password = ephemeral.aws_secretsmanager_random_password.this.random_password }))
  secret_string_wo_version = var.value_version
}
