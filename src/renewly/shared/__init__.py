"""The kernel every concept shares, pure: money, calendar, errors."""
