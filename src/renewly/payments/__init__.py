"""Charging invoices: collect, attempts, retries (asking for a charge again), janitor, cards, verifications, reconcile,
rate limit (R7)."""
