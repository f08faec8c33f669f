"""What delivery decides from plain values: what an SMTP answer means, when to try again."""
