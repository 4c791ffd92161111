"""Microsoft Outlook's CSV export, English labels (business address first, then home, then other)."""

SYSTEM = "Outlook (English)"

CONTACT = {
    "first_name": ["First Name"],
    "last_name": ["Last Name"],
    "email": ["E-mail Address", "E-mail 2 Address", "E-mail 3 Address"],
    "phone": [
        "Primary Phone",
        "Mobile Phone",
        "Business Phone",
        "Home Phone",
        "Company Main Phone",
        "Business Phone 2",
        "Home Phone 2",
        "Other Phone",
        "Car Phone",
    ],
    "website": ["Web Page"],
    "business": ["Company"],
    "address.street": ["Business Street", "Home Street", "Other Street"],
    "address.city": ["Business City", "Home City", "Other City"],
    "address.state_province": ["Business State", "Home State", "Other State"],
    "address.postal_code": ["Business Postal Code", "Home Postal Code", "Other Postal Code"],
    "address.country": [
        "Business Country/Region",
        "Home Country/Region",
        "Other Country/Region",
        "Business Country",
        "Home Country",
        "Other Country",
    ],
    "tags": ["Categories"],
}

DEAL: dict[str, list[str]] = {}
