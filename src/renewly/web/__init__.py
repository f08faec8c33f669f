"""The `/v1` REST API (`renewly serve`, docs/api.md): the host product's door to Renewly.

`app.create_app(ports)` builds the FastAPI application from a ready `Ports` (bootstrap.py, the
one composition root, builds them). Around the routes, from the outside in: `versions` (the
`Renewly-Version` header), `authentication` (a secret API key on every route but the OpenAPI
document and the docs page), `idempotency` (an `Idempotency-Key` on a POST replays its first
answer). `problems` turns every refusal into application/problem+json with the CLI's stable
codes; `pagination` is the one cursor every list uses; `routes/` holds one module per resource,
each calling the use cases the CLI calls (no logic of its own).
"""
