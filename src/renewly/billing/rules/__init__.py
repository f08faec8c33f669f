"""What billing decides, pure: plans, invoice drafts, numbering, proration, credit notes."""
