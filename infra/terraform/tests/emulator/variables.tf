# The emulator stack takes no input: run.py writes the provider's endpoints
# (provider.tf) into its temporary copy.
