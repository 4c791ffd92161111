"""Reminders: claiming and fanning out due reminders, the digest, the schedule, what users do with them."""
