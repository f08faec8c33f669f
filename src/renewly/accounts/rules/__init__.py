"""What accounts decide, pure: roles, identities, contact requests."""
