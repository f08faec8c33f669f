"""Plans, subscriptions, renewals, invoice numbering and issuing, credit notes (R2, R3, R5, R6)."""
