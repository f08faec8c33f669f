"""The console's pure decisions: staff fields and roles, the sign-in throttle."""
