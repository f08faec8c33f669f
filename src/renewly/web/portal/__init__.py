"""The billing portal's pages for people (docs/portal.md): app (create_portal), routes, rendering, security."""
