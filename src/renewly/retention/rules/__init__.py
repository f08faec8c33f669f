"""What retention decides, pure: the deadlines (deletion day, end of a document's retention),
pseudonyms for the audit log."""
