"""Salesforce: API field names (Data Loader and report exports) of Contact, Lead and Opportunity.
`Mailing*` is the contact's address; `Other*` only when there is no mailing one."""

SYSTEM = "Salesforce"

CONTACT = {
    "first_name": ["FirstName"],
    "last_name": ["LastName"],
    "name": ["Name"],
    "email": ["Email"],
    "phone": ["Phone", "MobilePhone", "HomePhone", "OtherPhone"],
    "website": ["Website"],
    "business": ["Company", "Account.Name", "AccountName"],
    "address.street": ["MailingStreet", "Street", "OtherStreet"],
    "address.city": ["MailingCity", "City", "OtherCity"],
    "address.state_province": ["MailingState", "State", "OtherState", "MailingStateCode"],
    "address.postal_code": ["MailingPostalCode", "PostalCode", "OtherPostalCode"],
    "address.country": ["MailingCountry", "Country", "OtherCountry", "MailingCountryCode"],
    "owner": ["OwnerId"],
    "external_id": ["Id"],
}

DEAL = {
    "name": ["Name", "Opportunity Name"],
    "stage": ["StageName"],
    "value": ["Amount"],
    "currency": ["CurrencyIsoCode"],
    "expected_close_date": ["CloseDate"],
    "owner": ["OwnerId"],
    "business": ["Account.Name", "AccountName"],
    "external_id": ["Id", "Opportunity ID"],
}
