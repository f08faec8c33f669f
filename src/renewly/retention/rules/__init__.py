"""What retention decides, pure: pseudonyms for the audit log."""
