"""Onboarding: customers arriving from another system, in bulk (`renewly import`)."""
