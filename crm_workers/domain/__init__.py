"""Pure rules with no I/O."""
