"""HubSpot exports (contacts and deals; the property labels HubSpot writes as headers)."""

SYSTEM = "HubSpot"

CONTACT = {
    "phone": ["Phone Number", "Mobile Phone Number"],
    "website": ["Website URL"],
    "business": ["Company Name", "Associated Company", "Primary Associated Company"],
    "address.street": ["Street Address"],
    "address.state_province": ["State/Region"],
    "address.country": ["Country/Region"],
    "owner": ["Contact owner", "HubSpot Owner"],
    "external_id": ["Record ID", "Contact ID"],
}

DEAL = {
    "name": ["Deal Name"],
    "stage": ["Deal Stage"],
    "pipeline": ["Pipeline"],
    "value": ["Amount", "Amount in company currency"],
    "currency": ["Currency"],
    "expected_close_date": ["Close Date"],
    "owner": ["Deal owner", "HubSpot Owner"],
    "contact_email": ["Associated Contact Email"],
    "business": ["Associated Company", "Associated Company Name"],
    "external_id": ["Record ID", "Deal ID"],
}
