"""Zoho CRM exports: Contacts, Leads and Deals (called Potentials in older exports)."""

SYSTEM = "Zoho CRM"

CONTACT = {
    "business": ["Account Name", "Company"],
    "address.street": ["Mailing Street", "Street", "Other Street"],
    "address.city": ["Mailing City", "Other City"],
    "address.state_province": ["Mailing State", "Other State"],
    "address.postal_code": ["Mailing Zip", "Zip Code", "Other Zip"],
    "address.country": ["Mailing Country", "Other Country"],
    "owner": ["Contact Owner", "Lead Owner"],
    "external_id": ["Record Id", "Contact Id", "LEADID", "Lead Id", "CONTACTID"],
}

DEAL = {
    "name": ["Deal Name", "Potential Name"],
    "stage": ["Stage"],
    "pipeline": ["Pipeline"],
    "value": ["Amount"],
    "currency": ["Currency"],
    "expected_close_date": ["Closing Date"],
    "owner": ["Deal Owner", "Potential Owner"],
    "business": ["Account Name"],
    "external_id": ["Record Id", "Deal Id", "Potential Id", "POTENTIALID", "DEALID", "LEADID"],
}
