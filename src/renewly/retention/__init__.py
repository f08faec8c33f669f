"""Deleting an abandoned account's data and purging old invoices on time (R10, R11, R12)."""
