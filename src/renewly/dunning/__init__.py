"""Chasing unpaid invoices: the sweep, recovery, banners, access, reactivation, preview (R8, R9)."""
