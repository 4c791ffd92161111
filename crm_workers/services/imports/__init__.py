"""Imports: accepting a file or records, the run, the writer, lookups, undo, the errors file, the Pub/Sub bridge."""
