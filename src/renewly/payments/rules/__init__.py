"""What payments decide, pure: outcomes, attempt keys, card expiry, declines in words."""
