"""Pipedrive exports: every header carries its object (`Person - Email - Work`, `Deal - Title`)."""

SYSTEM = "Pipedrive"

CONTACT = {
    "name": ["Person - Name"],
    "first_name": ["Person - First name"],
    "last_name": ["Person - Last name"],
    "email": ["Person - Email", "Person - Email - Work", "Person - Email - Home", "Person - Email - Other"],
    "phone": [
        "Person - Phone",
        "Person - Phone - Work",
        "Person - Phone - Mobile",
        "Person - Phone - Home",
        "Person - Phone - Other",
    ],
    "business": ["Person - Organization", "Organization - Name"],
    "tags": ["Person - Labels", "Person - Label"],
    "owner": ["Person - Owner"],
    "external_id": ["Person - ID"],
    "address.street": ["Person - Postal address", "Person - Postal address - Street/road name"],
    "address.city": ["Person - Postal address - City/town/village/locality"],
    "address.state_province": ["Person - Postal address - State/county"],
    "address.postal_code": ["Person - Postal address - ZIP/Postal code"],
    "address.country": ["Person - Postal address - Country"],
}

DEAL = {
    "name": ["Deal - Title"],
    "value": ["Deal - Value"],
    "currency": ["Deal - Currency"],
    "pipeline": ["Deal - Pipeline"],
    "stage": ["Deal - Stage"],
    "status": ["Deal - Status"],
    "expected_close_date": ["Deal - Expected close date"],
    "owner": ["Deal - Owner"],
    "business": ["Deal - Organization", "Organization - Name"],
    "tags": ["Deal - Label", "Deal - Labels"],
    "contact_email": ["Person - Email", "Person - Email - Work"],
    "external_id": ["Deal - ID"],
}
