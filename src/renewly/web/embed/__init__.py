"""The banner embed for the host product's dashboard (docs/portal.md), mounted at /embed.
"""
