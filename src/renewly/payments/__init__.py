"""Charging invoices: collect, attempts, retries' charges, janitor, cards, verifications, reconcile, rate limit (R7)."""
