"""The business decisions, one package per job family: `imports/`, `mass/`, `exports/`, `automations/`,
`reminders/`. What serves every family stays here: submitting jobs, undo, owner visibility and selections
(mass operations and exports share them), stage events (the hook between mass updates, imports and
automations), housekeeping, and the dashboard and metrics reads."""
