/**
 * The fan-out broker (DESIGN §3, `--bus rediss://...`): an ElastiCache
 * (Valkey) replication group in the private subnets, a primary and replicas
 * in other AZs with automatic failover, TLS in transit (required), at-rest
 * encryption with the project's key, an auth token, reachable only from the
 * cluster's security group. The token, host and port are in a Secrets
 * Manager secret that External Secrets turns into the release's PALAVER_BUS
 * (`rediss://:<token>@<primary endpoint>:6379`).
 *
 * ElastiCache has no write-only argument for the token (AWS provider 5.x):
 * it passes through the Terraform state, which is encrypted and readable
 * only by the apply roles. It is generated once (Secrets Manager
 * GetRandomPassword) and then kept: both the group and the secret ignore
 * later values; rotate with auth_token_update_strategy (see README).
 */

#### Network

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-bus"
  description = "Private subnets of the ${var.name} fan-out broker"
  subnet_ids  = var.subnet_ids

  tags = merge(var.tags, { Name = "${var.name}-bus" })
}

resource "aws_security_group" "this" {
  name        = "${var.name}-bus"
  description = "Valkey from the allowed security groups only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-bus" })
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = var.allowed_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "Valkey (TLS) from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value

  tags = merge(var.tags, { Name = "${var.name}-bus-from-${each.key}" })
}

#### Logs

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/elasticache/${var.name}-bus"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn

  tags = merge(var.tags, { Name = "${var.name}-bus" })
}

#### Token

data "aws_secretsmanager_random_password" "token" {
  password_length     = 64
  exclude_punctuation = true
}

#### Replication group

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${var.name}-bus"
  description          = "Palaver fan-out broker of ${var.name}"
  engine               = "valkey"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = var.port
  parameter_group_name = var.parameter_group_name

  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  auth_token                 = data.aws_secretsmanager_random_password.token.random_password
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  maintenance_window         = var.maintenance_window
  snapshot_retention_limit   = var.snapshot_retention_days
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.this.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.this.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }

  tags = merge(var.tags, { Name = "${var.name}-bus" })

  lifecycle {
    # The data source generates a new value at every plan; the token stays
    # the one set at creation until a deliberate rotation.
    ignore_changes = [auth_token]
  }
}

#### Secret (External Secrets -> PALAVER_BUS)

resource "aws_secretsmanager_secret" "this" {
  name                    = "${var.name}/app/bus"
  description             = "Palaver fan-out broker of ${var.name}: token, host, port (the release's PALAVER_BUS)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = merge(var.tags, { Name = "${var.name}-bus" })
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id = aws_secretsmanager_secret.this.id
  secret_string = jsonencode({
    token = aws_elasticache_replication_group.this.auth_token
    host  = aws_elasticache_replication_group.this.primary_endpoint_address
    port  = tostring(var.port)
  })
}
