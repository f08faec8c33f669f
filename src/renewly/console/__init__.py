"""The support console's staff: accounts, sign-in and its throttle, what they read (docs/console.md)."""
