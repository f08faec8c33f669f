"""Adapters: everything that talks to the world (database, clock; later gateways, mail, PDF)."""
