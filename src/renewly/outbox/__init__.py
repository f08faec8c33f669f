"""Events and e-mails, written in the transaction that causes them, read by delivery."""
