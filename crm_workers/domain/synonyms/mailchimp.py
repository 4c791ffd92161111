"""Mailchimp audience exports (merge fields by label, system columns in capitals)."""

SYSTEM = "Mailchimp"

CONTACT = {
    "email": ["Email Address"],
    "phone": ["Phone Number"],
    "address.street": ["Address"],
    "address.country": ["CC"],
    "address.state_province": ["REGION"],
    "tags": ["TAGS"],
    "external_id": ["LEID"],
}

DEAL: dict[str, list[str]] = {}
