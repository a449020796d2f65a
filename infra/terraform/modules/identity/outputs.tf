output "issuer_url" {
  description = "OIDC issuer of the user pool (`--oidc-issuer`, auth.oidc.issuer): https://cognito-idp.<region>.amazonaws.com/<pool id>."
  value       = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this.id}"
}

output "client_id" {
  description = "App client id of the web UI: the tokens' audience (`--oidc-audience`, auth.oidc.audience)."
  value       = aws_cognito_user_pool_client.web.id
}

output "user_pool_id" {
  description = "ID of the user pool."
  value       = aws_cognito_user_pool.this.id
}

output "hosted_ui_domain" {
  description = "Hosted-UI domain, or null."
  value       = one(aws_cognito_user_pool_domain.this[*].domain)
}
