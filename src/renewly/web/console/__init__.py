"""The support console's pages at /console (docs/console.md)."""
