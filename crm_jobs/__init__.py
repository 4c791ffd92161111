"""Entrypoints: the `crm-jobs` command and the embedded servers of `crm-jobs dev`."""
