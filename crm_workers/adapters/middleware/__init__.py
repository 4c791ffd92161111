"""Dramatiq middleware: each its own module."""
