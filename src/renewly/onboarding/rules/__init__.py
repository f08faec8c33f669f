"""What an import decides, pure: its records read and checked whole."""
