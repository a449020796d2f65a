# The modules this stack called directly before modules/platform composed
# them: their state moves under module.platform, nothing is replaced. Remove
# these blocks once both environments have been applied with them.

moved {
  from = module.security
  to   = module.platform.module.security
}

moved {
  from = module.network
  to   = module.platform.module.network
}

moved {
  from = module.eks
  to   = module.platform.module.eks
}

moved {
  from = module.aurora
  to   = module.platform.module.aurora
}
