"""Webhooks to the host product: every outbox event, signed per Standard Webhooks, to each
endpoint registered for its type (docs/webhooks.md).

`endpoints.py` registers, lists, disables, enables and removes endpoints; `delivery.py` is the
batch (`renewly webhooks send`, the worker's `webhooks` batch): it hands each new outbox event
to the endpoints that want it (one delivery each), claims the deliveries due, POSTs them at once
through `adapters/webhooks.py` (signed, bounded concurrency and time) and writes what each
endpoint answered; `deliveries.py` reads deliveries and their attempts and replays one. `rules/`
decides: the public types and the message (events), which URLs are accepted (endpoints), what an
answer means, when to try again and when an endpoint is disabled (answers).
"""
