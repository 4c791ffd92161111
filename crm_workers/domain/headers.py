"""Import targets (CONTRACT §7) and matching a file's headers to them."""

from __future__ import annotations

import re

CONTACT_TARGETS = (
    "type", "first_name", "last_name", "name", "email", "phone", "website",
    "address.street", "address.city", "address.state_province", "address.postal_code", "address.country",
    "tags", "owner", "business", "external_id",
)
DEAL_TARGETS = (
    "name", "pipeline", "stage", "value", "currency", "status", "expected_close_date", "contact_email",
    "tags", "owner", "business", "external_id",
)

# Normalised header -> target. Normalising drops case, spaces, "_", "-" and ".".
_SYNONYMS = {
    "contact": {
        "type": "type", "contacttype": "type",
        "firstname": "first_name", "givenname": "first_name", "forename": "first_name", "first": "first_name",
        "lastname": "last_name", "surname": "last_name", "familyname": "last_name", "last": "last_name",
        "name": "name", "fullname": "name", "contactname": "name",
        "email": "email", "emailaddress": "email", "mail": "email", "emailaddr": "email", "workemail": "email",
        "phone": "phone", "phonenumber": "phone", "mobile": "phone", "mobilephone": "phone", "cell": "phone",
        "cellphone": "phone", "telephone": "phone", "tel": "phone", "workphone": "phone", "mobilenumber": "phone",
        "website": "website", "web": "website", "url": "website", "site": "website", "homepage": "website",
        "street": "address.street", "address": "address.street", "streetaddress": "address.street",
        "addressstreet": "address.street", "address1": "address.street", "addressline1": "address.street",
        "city": "address.city", "town": "address.city", "addresscity": "address.city",
        "state": "address.state_province", "province": "address.state_province", "region": "address.state_province",
        "stateprovince": "address.state_province", "addressstateprovince": "address.state_province",
        "county": "address.state_province",
        "zip": "address.postal_code", "zipcode": "address.postal_code", "postalcode": "address.postal_code",
        "postcode": "address.postal_code", "addresspostalcode": "address.postal_code",
        "country": "address.country", "addresscountry": "address.country",
        "tags": "tags", "tag": "tags", "labels": "tags",
        "owner": "owner", "ownerid": "owner",
        "business": "business", "company": "business", "companyname": "business", "organization": "business",
        "organisation": "business", "account": "business", "employer": "business", "businessname": "business",
    },
    "deal": {
        "name": "name", "dealname": "name", "deal": "name", "title": "name", "opportunity": "name",
        "opportunityname": "name",
        "pipeline": "pipeline", "pipelinename": "pipeline",
        "stage": "stage", "stagename": "stage", "dealstage": "stage",
        "value": "value", "amount": "value", "dealvalue": "value", "valueamount": "value",
        "currency": "currency", "valuecurrency": "currency",
        "status": "status", "dealstatus": "status",
        "expectedclosedate": "expected_close_date", "closedate": "expected_close_date",
        "expectedclose": "expected_close_date",
        "contactemail": "contact_email", "email": "contact_email", "emailaddress": "contact_email",
        "tags": "tags", "tag": "tags", "labels": "tags",
        "owner": "owner", "ownerid": "owner",
        "business": "business", "company": "business", "companyname": "business", "organization": "business",
        "organisation": "business",
    },
}


def normalise_header(header: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(header)).lower()


def targets_for(entity: str, field_keys: list[str]) -> set[str]:
    base = CONTACT_TARGETS if entity == "contact" else DEAL_TARGETS
    return set(base) | {f"custom.{k}" for k in field_keys}


def auto_mapping(headers: list[str], entity: str, field_keys: list[str], field_labels: dict[str, str]
                 ) -> tuple[dict[str, str], list[str]]:
    """Match headers to targets by name (and custom fields by key or label); returns (mapping, ignored headers).

    A target is taken by the first header that matches it; later headers matching it again are ignored.
    """
    table = dict(_SYNONYMS[entity])
    for target in targets_for(entity, field_keys):
        table.setdefault(normalise_header(target), target)
    for key in field_keys:
        table.setdefault(normalise_header(key), f"custom.{key}")
        table.setdefault(normalise_header(f"custom.{key}"), f"custom.{key}")
    for key, label in field_labels.items():
        table.setdefault(normalise_header(label), f"custom.{key}")
    mapping, ignored, taken = {}, [], set()
    for header in headers:
        target = table.get(normalise_header(header))
        if target and target not in taken:
            mapping[header] = target
            taken.add(target)
        else:
            ignored.append(header)
    return mapping, ignored


def clean_headers(raw: list) -> list[str]:
    """Headers made usable: trimmed, empty ones named `column_<n>`, duplicates suffixed ` (2)`, ` (3)`…"""
    seen: dict[str, int] = {}
    headers = []
    for i, value in enumerate(raw):
        name = "" if value is None else str(value).strip().lstrip("\ufeff")
        name = name or f"column_{i + 1}"
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        headers.append(name if count == 1 else f"{name} ({count})")
    return headers
