"""The business decisions, one module per job family."""
