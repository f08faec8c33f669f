"""What webhooks decide from plain values: the public event types and the message an endpoint
receives (events), which endpoints may be registered (endpoints), what an answer means and when
a delivery is tried again or an endpoint disabled (answers)."""
