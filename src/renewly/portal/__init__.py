"""What an account's owner sees of it (R1.1): reads of every concept, for the portal to render."""
