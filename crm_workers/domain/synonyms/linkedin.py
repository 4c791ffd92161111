"""LinkedIn's `Connections.csv` (after its `Notes:` preamble, found by domain/header_row.py)."""

SYSTEM = "LinkedIn"

CONTACT = {
    "email": ["Email Address"],
    "business": ["Company"],
    "website": ["URL"],
}

DEAL: dict[str, list[str]] = {}
