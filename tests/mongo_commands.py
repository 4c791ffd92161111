"""A command listener for tests that count what a piece of code sends to MongoDB."""

from __future__ import annotations

from pymongo import monitoring

#: The driver's own conversation with the server, not the code's.
DRIVER_COMMANDS = ("hello", "isMaster", "ping", "endSessions")


class Commands(monitoring.CommandListener):
    """Every command sent, as (name, collection) in `names`."""

    def __init__(self):
        self.names: list[tuple[str, str]] = []

    def started(self, event):
        if event.command_name not in DRIVER_COMMANDS:
            self.names.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass
