"""Exports: accepting an export, and streaming the selection into a CSV or XLSX in storage."""
