"""Google Contacts, "Google CSV": the old export (`Given Name`, `E-mail 1 - Type`) and the new one
(`First Name`, `E-mail 1 - Label`, `Organization Name`). Numbered groups are patterns: `E-mail 1 - Value`
wins over `E-mail 2 - Value`. Multi-values inside a cell (`a@x ::: b@x`) are read in domain/values.py."""

SYSTEM = "Google Contacts"

CONTACT = {
    "first_name": ["Given Name"],
    "last_name": ["Family Name"],
    "name": ["Name", "File As"],
    "business": ["Organization Name"],
    "tags": ["Labels", "Group Membership"],
}

DEAL: dict[str, list[str]] = {}

CONTACT_PATTERNS = [
    (r"e-?mail (\d+) - value", "email"),
    (r"phone (\d+) - value", "phone"),
    (r"organi[sz]ation (\d+) - name", "business"),
    (r"website (\d+) - value", "website"),
    (r"address (\d+) - street", "address.street"),
    (r"address (\d+) - city", "address.city"),
    (r"address (\d+) - region", "address.state_province"),
    (r"address (\d+) - postal code", "address.postal_code"),
    (r"address (\d+) - country", "address.country"),
]
