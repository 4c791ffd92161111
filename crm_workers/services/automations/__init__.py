"""Stage automations: the run with its logs, and the actions."""
