output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones the subnets span, in order."
  value       = var.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (internet-facing load balancers, NAT), in AZ order."
  value       = [for az in var.azs : aws_subnet.public[az].id]
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (EKS nodes and pods, internal load balancers), in AZ order."
  value       = [for az in var.azs : aws_subnet.private[az].id]
}

output "private_subnet_cidrs" {
  description = "CIDRs of the private subnets, in AZ order."
  value       = [for az in var.azs : aws_subnet.private[az].cidr_block]
}

output "database_subnet_ids" {
  description = "IDs of the isolated database subnets, in AZ order."
  value       = [for az in var.azs : aws_subnet.database[az].id]
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways (egress addresses to allow-list elsewhere)."
  value       = [for eip in aws_eip.nat : eip.public_ip]
}

output "flow_log_group_name" {
  description = "CloudWatch Logs group receiving the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}

output "public_subnet_cidrs" {
  description = "CIDRs of the public subnets (where an internet-facing ALB connects to pods from), in AZ order."
  value       = [for az in var.azs : aws_subnet.public[az].cidr_block]
}

output "database_subnet_cidrs" {
  description = "CIDRs of the database subnets (the only database egress the NetworkPolicies open), in AZ order."
  value       = [for az in var.azs : aws_subnet.database[az].cidr_block]
}
