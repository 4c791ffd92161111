"""Plain English labels, the target names themselves and the words most spreadsheets use."""

SYSTEM = "common"

CONTACT = {
    "type": ["Type", "Contact Type"],
    "first_name": ["First Name", "Given Name", "Forename", "First", "FName"],
    "last_name": ["Last Name", "Surname", "Family Name", "Last", "LName"],
    "name": ["Name", "Full Name", "Contact Name", "Display Name", "Contact"],
    "email": ["Email", "E-mail", "Email Address", "E-mail Address", "Mail", "Email Addr", "Primary Email",
              "Work Email", "Business Email", "Personal Email", "Emails"],
    "phone": ["Phone", "Phone Number", "Telephone", "Tel", "Mobile", "Mobile Phone", "Mobile Number", "Cell",
              "Cell Phone", "Work Phone", "Business Phone", "Direct Phone", "Home Phone", "Phones"],
    "website": ["Website", "Web Site", "Web", "URL", "Site", "Homepage", "Home Page", "Web Page", "Website URL"],
    "address.street": ["Street", "Street Address", "Address", "Address Street", "Address 1", "Address Line 1",
                       "Street 1", "Mailing Address"],
    "address.city": ["City", "Town", "Address City", "Locality"],
    "address.state_province": ["State", "State/Province", "State Province", "Province", "Region", "County",
                               "Address State Province", "State/Region"],
    "address.postal_code": ["Zip", "Zip Code", "ZIP/Postal Code", "Postal Code", "Postcode", "Post Code",
                            "Address Postal Code"],
    "address.country": ["Country", "Country/Region", "Country Code", "Address Country"],
    "tags": ["Tags", "Tag", "Labels", "Label", "Categories", "Category", "Groups", "Segments"],
    "owner": ["Owner", "Owner ID", "Contact Owner", "Record Owner", "Assigned To"],
    "business": ["Business", "Company", "Company Name", "Organization", "Organisation", "Organization Name",
                 "Organisation Name", "Account", "Account Name", "Employer", "Business Name"],
    "external_id": ["External ID", "Contact ID", "Record ID", "ID", "Person ID", "Lead ID", "Customer ID",
                    "Source ID"],
}

DEAL = {
    "name": ["Name", "Deal Name", "Deal", "Title", "Deal Title", "Opportunity", "Opportunity Name"],
    "pipeline": ["Pipeline", "Pipeline Name", "Sales Pipeline Name"],
    "stage": ["Stage", "Deal Stage", "Stage Name", "Sales Stage", "Pipeline Stage"],
    "value": ["Value", "Amount", "Deal Value", "Deal Amount", "Value Amount", "Opportunity Amount", "Price"],
    "currency": ["Currency", "Value Currency", "Currency Code", "Amount Currency"],
    "status": ["Status", "Deal Status"],
    "expected_close_date": ["Expected Close Date", "Close Date", "Expected Close", "Closing Date",
                            "Expected Closing Date"],
    "contact_email": ["Contact Email", "Email", "E-mail", "Email Address", "Person Email", "Contact E-mail"],
    "tags": ["Tags", "Tag", "Labels", "Label"],
    "owner": ["Owner", "Owner ID", "Deal Owner", "Record Owner", "Assigned To"],
    "business": ["Business", "Company", "Company Name", "Organization", "Organisation", "Organization Name",
                 "Account", "Account Name", "Associated Company"],
    "external_id": ["External ID", "Deal ID", "Record ID", "ID", "Opportunity ID"],
}
