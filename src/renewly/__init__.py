"""Renewly: subscription billing, invoicing and dunning for SaaS companies."""

__version__ = "0.1.0"
