"""Accounts, their members and roles, buyer address, ownership and billing contacts (R1, R3, R4)."""
