"""Files written here in the shape other systems export them (full header rows, their labels, their ways of
writing values), imported with no mapping: the key fields land where they belong and every row imports.
The published samples of other systems are in test_realworld_files.py."""

from __future__ import annotations

import csv
import io

from tests.e2e.imports.helpers import contacts, run_import
from tests.e2e.imports.test_preview import preview

OUTLOOK_EN = [
    "Title",
    "First Name",
    "Middle Name",
    "Last Name",
    "Suffix",
    "Company",
    "Department",
    "Job Title",
    "Business Street",
    "Business Street 2",
    "Business Street 3",
    "Business City",
    "Business State",
    "Business Postal Code",
    "Business Country/Region",
    "Home Street",
    "Home Street 2",
    "Home Street 3",
    "Home City",
    "Home State",
    "Home Postal Code",
    "Home Country/Region",
    "Other Street",
    "Other City",
    "Other State",
    "Other Postal Code",
    "Other Country/Region",
    "Assistant's Phone",
    "Business Fax",
    "Business Phone",
    "Business Phone 2",
    "Callback",
    "Car Phone",
    "Company Main Phone",
    "Home Fax",
    "Home Phone",
    "Home Phone 2",
    "ISDN",
    "Mobile Phone",
    "Other Fax",
    "Other Phone",
    "Pager",
    "Primary Phone",
    "Radio Phone",
    "TTY/TDD Phone",
    "Telex",
    "Account",
    "Anniversary",
    "Assistant's Name",
    "Billing Information",
    "Birthday",
    "Business Address PO Box",
    "Categories",
    "Children",
    "Directory Server",
    "E-mail Address",
    "E-mail Type",
    "E-mail Display Name",
    "E-mail 2 Address",
    "E-mail 2 Type",
    "E-mail 2 Display Name",
    "E-mail 3 Address",
    "E-mail 3 Type",
    "E-mail 3 Display Name",
    "Gender",
    "Government ID Number",
    "Hobby",
    "Home Address PO Box",
    "Initials",
    "Internet Free Busy",
    "Keywords",
    "Language",
    "Location",
    "Manager's Name",
    "Mileage",
    "Notes",
    "Office Location",
    "Organizational ID Number",
    "Other Address PO Box",
    "Priority",
    "Private",
    "Profession",
    "Referred By",
    "Sensitivity",
    "Spouse",
    "User 1",
    "User 2",
    "User 3",
    "User 4",
    "Web Page",
]
# The same export in German, French and Spanish: each English label's translation (Outlook's own words).
OUTLOOK_DE = {
    "Title": "Anrede",
    "First Name": "Vorname",
    "Middle Name": "Weitere Vornamen",
    "Last Name": "Nachname",
    "Company": "Firma",
    "Department": "Abteilung",
    "Job Title": "Position",
    "Business Street": "Straße geschäftlich",
    "Business City": "Ort geschäftlich",
    "Business State": "Region geschäftlich",
    "Business Postal Code": "Postleitzahl geschäftlich",
    "Business Country/Region": "Land/Region geschäftlich",
    "Home Street": "Straße privat",
    "Home City": "Ort privat",
    "Home State": "Bundesland/Kanton privat",
    "Home Postal Code": "Postleitzahl privat",
    "Home Country/Region": "Land/Region privat",
    "Business Phone": "Telefon geschäftlich",
    "Home Phone": "Telefon privat",
    "Mobile Phone": "Mobiltelefon",
    "Primary Phone": "Haupttelefon",
    "Account": "Konto",
    "Categories": "Kategorien",
    "E-mail Address": "E-Mail-Adresse",
    "E-mail Type": "E-Mail-Typ",
    "E-mail Display Name": "E-Mail: Angezeigter Name",
    "E-mail 2 Address": "E-Mail 2: Adresse",
    "Notes": "Notizen",
    "Location": "Ort",
    "Web Page": "Webseite",
    "Birthday": "Geburtstag",
}
OUTLOOK_FR = {
    "Title": "Titre",
    "First Name": "Prénom",
    "Middle Name": "Deuxième prénom",
    "Last Name": "Nom",
    "Company": "Société",
    "Department": "Service",
    "Business Street": "Rue (bureau)",
    "Business City": "Ville (bureau)",
    "Business State": "Dép/Région (bureau)",
    "Business Postal Code": "Code postal (bureau)",
    "Business Country/Region": "Pays/Région (bureau)",
    "Home Street": "Rue (domicile)",
    "Home City": "Ville (domicile)",
    "Home State": "Dép/Région (domicile)",
    "Home Postal Code": "Code postal (domicile)",
    "Home Country/Region": "Pays/Région (domicile)",
    "Business Phone": "Téléphone (bureau)",
    "Home Phone": "Téléphone (domicile)",
    "Mobile Phone": "Tél. mobile",
    "Primary Phone": "Téléphone principal",
    "Categories": "Catégories",
    "E-mail Address": "Adresse de messagerie",
    "E-mail Type": "Type de messagerie",
    "E-mail Display Name": "Nom complet de l'adresse de messagerie",
    "Notes": "Notes",
    "Web Page": "Page Web",
    "Birthday": "Anniversaire",
}
OUTLOOK_ES = {
    "Title": "Tratamiento",
    "First Name": "Nombre",
    "Middle Name": "Segundo nombre",
    "Last Name": "Apellidos",
    "Company": "Organización",
    "Department": "Departamento",
    "Job Title": "Puesto",
    "Business Street": "Calle del trabajo",
    "Business City": "Ciudad de trabajo",
    "Business State": "Provincia o estado de trabajo",
    "Business Postal Code": "Código postal del trabajo",
    "Business Country/Region": "País o región del trabajo",
    "Home Street": "Calle del domicilio",
    "Home City": "Ciudad de residencia",
    "Home State": "Provincia o estado de residencia",
    "Home Postal Code": "Código postal de residencia",
    "Home Country/Region": "País o región de residencia",
    "Business Phone": "Teléfono del trabajo",
    "Home Phone": "Particular",
    "Mobile Phone": "Móvil",
    "Primary Phone": "Teléfono principal",
    "Categories": "Categorías",
    "E-mail Address": "Dirección de correo electrónico",
    "E-mail Type": "Tipo de correo electrónico",
    "E-mail Display Name": "Nombre mostrado del correo electrónico",
    "Notes": "Notas",
    "Web Page": "Página web",
}
PEOPLE = [  # first, last, company, street, city, state, postal code, country, phone, email, category
    (
        "Ana",
        "Lima",
        "Acme GmbH",
        "Hauptstraße 5",
        "Berlin",
        "BE",
        "10115",
        "Germany",
        "030 1234567",
        "ana@example.com",
        "Kunden",
    ),
    (
        "Jürgen",
        "Weiß",
        "Weiß & Söhne",
        "Bahnhofstraße 12",
        "München",
        "BY",
        "80335",
        "Germany",
        "089 7654321",
        "juergen@example.de",
        "Lieferanten;Kunden",
    ),
    ("Élodie", "Dupré", "Café Été", "", "", "", "", "", "0170 5550123", "elodie@example.fr", ""),
]


def _csv(headers: list[str], rows: list[dict], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=headers, delimiter=delimiter, lineterminator="\r\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _outlook(labels: dict | None = None, encoding: str = "cp1252", delimiter: str = ",") -> bytes:
    name = (labels or {}).get
    rows = []
    for i, (first, last, company, street, city, state, zip_code, country, phone, email, cats) in enumerate(PEOPLE):
        where = "Business" if i != 2 else "Home"  # the last one has a home address only… which is empty
        row = {
            "First Name": first,
            "Last Name": last,
            "Company": company,
            f"{where} Street": street,
            f"{where} City": city,
            f"{where} State": state,
            f"{where} Postal Code": zip_code,
            f"{where} Country/Region": country,
            "Mobile Phone": phone,
            "E-mail Address": email,
            "E-mail Type": "SMTP",
            "E-mail Display Name": f"{first} {last} ({email})",
            "Categories": cats,
            "Priority": "Normal",
            "Sensitivity": "Normal",
            "Private": "False",
            "Gender": "Unspecified",
            "Birthday": "0.0.00",
        }
        rows.append({name(k, k): v for k, v in row.items()})
    return _csv([name(h, h) for h in OUTLOOK_EN], rows, encoding, delimiter)


def _tags(db, tenant, person) -> list[str]:
    names = {t["_id"]: t["name"] for t in db["crm.tags"].find({"account_id": tenant.account_id})}
    return sorted(names[t] for t in person.get("tags", []))


def _businesses(db, person) -> list[str]:
    return [b["name"] for b in db["crm.contacts"].find({"_id": {"$in": person.get("businesses", [])}})]


def _check_outlook_people(db, tenant, job):
    assert job["status"] == "completed", job.get("error")
    assert job["result"]["counts"] == {"created": 3, "updated": 0, "skipped": 0, "failed": 0}
    by_email = {p["email"]: p for p in contacts(db, tenant.account_id, type="person")}
    juergen, elodie = by_email["juergen@example.de"], by_email["elodie@example.fr"]
    assert (juergen["first_name"], juergen["last_name"], juergen["phone"]) == ("Jürgen", "Weiß", "+49897654321")
    assert juergen["address"] == {
        "street": "Bahnhofstraße 12",
        "city": "München",
        "state_province": "BY",
        "postal_code": "80335",
        "country": "Germany",
    }
    assert _businesses(db, juergen) == ["Weiß & Söhne"] and _tags(db, tenant, juergen) == ["Kunden", "Lieferanten"]
    assert (elodie["first_name"], elodie["last_name"], elodie["phone"]) == ("Élodie", "Dupré", "+491705550123")


def test_an_outlook_export_in_english_imports_names_emails_mobiles_companies_addresses_and_categories(
    client, db, worker, tenant
):
    job = run_import(client, db, tenant, _outlook(), "contacts.CSV", {"country": "DE"})

    _check_outlook_people(db, tenant, job)
    assert job["result"]["mapping"]["Business Street"] == "address.street"
    assert job["result"]["mapping"]["Mobile Phone"] == "phone" and "Account" not in job["result"]["mapping"]


def test_an_outlook_export_in_german_imports_like_the_english_one(client, db, worker, tenant):
    job = run_import(client, db, tenant, _outlook(OUTLOOK_DE, delimiter=";"), "Kontakte.csv", {"country": "DE"})

    _check_outlook_people(db, tenant, job)
    assert job["result"]["file"]["delimiter"] == ";"
    assert job["result"]["mapping"]["Straße geschäftlich"] == "address.street"
    assert job["result"]["matches"]["E-Mail-Adresse"]["source"] == "Outlook (German)"


def test_an_outlook_export_in_french_imports_like_the_english_one(client, db, worker, tenant):
    job = run_import(client, db, tenant, _outlook(OUTLOOK_FR, delimiter=";"), "contacts.csv", {"country": "DE"})

    _check_outlook_people(db, tenant, job)
    assert (
        job["result"]["mapping"]["Adresse de messagerie"] == "email" and job["result"]["mapping"]["Nom"] == "last_name"
    )


def test_an_outlook_export_in_spanish_imports_like_the_english_one(client, db, worker, tenant):
    job = run_import(client, db, tenant, _outlook(OUTLOOK_ES, encoding="utf-8-sig"), "contactos.csv", {"country": "DE"})

    _check_outlook_people(db, tenant, job)
    assert job["result"]["mapping"]["Móvil"] == "phone" and job["result"]["mapping"]["Organización"] == "business"


GOOGLE_NEW = [
    "First Name",
    "Middle Name",
    "Last Name",
    "Phonetic First Name",
    "Phonetic Middle Name",
    "Phonetic Last Name",
    "Name Prefix",
    "Name Suffix",
    "Nickname",
    "File As",
    "Organization Name",
    "Organization Title",
    "Organization Department",
    "Birthday",
    "Notes",
    "Photo",
    "Labels",
    "E-mail 1 - Label",
    "E-mail 1 - Value",
    "E-mail 2 - Label",
    "E-mail 2 - Value",
    "Phone 1 - Label",
    "Phone 1 - Value",
    "Phone 2 - Label",
    "Phone 2 - Value",
    "Address 1 - Label",
    "Address 1 - Formatted",
    "Address 1 - Street",
    "Address 1 - City",
    "Address 1 - PO Box",
    "Address 1 - Region",
    "Address 1 - Postal Code",
    "Address 1 - Country",
    "Address 1 - Extended Address",
    "Website 1 - Label",
    "Website 1 - Value",
]


def test_a_google_contacts_export_in_the_new_format_takes_the_first_of_multi_values(client, db, worker, tenant):
    rows = [
        {
            "First Name": "Ana",
            "Last Name": "Lima",
            "Organization Name": "Acme",
            "Labels": "* myContacts ::: Friends",
            "E-mail 1 - Label": "* Work",
            "E-mail 1 - Value": "ana@acme.com ::: ana.lima@acme.com",
            "E-mail 2 - Label": "Home",
            "E-mail 2 - Value": "ana@home.example",
            "Phone 1 - Label": "Mobile",
            "Phone 1 - Value": "+1 415-555-0134 ::: +1 415-555-0199",
            "Address 1 - Label": "Work",
            "Address 1 - Formatted": "1 Market St\nSan Francisco, CA 94105\nUS",
            "Address 1 - Street": "1 Market St",
            "Address 1 - City": "San Francisco",
            "Address 1 - Region": "CA",
            "Address 1 - Postal Code": "94105",
            "Address 1 - Country": "US",
            "Website 1 - Label": "",
            "Website 1 - Value": "acme.com",
        },
        {
            "First Name": "Bob",
            "Last Name": "Stone",
            "Labels": "* myContacts",
            "E-mail 1 - Label": "* Home",
            "E-mail 1 - Value": "bob@example.com",
            "Phone 1 - Value": "+44 20 7946 0958",
        },
    ]
    job = run_import(client, db, tenant, _csv(GOOGLE_NEW, rows), "contacts.csv")
    ana = contacts(db, tenant.account_id, email="ana@acme.com")[0]

    assert job["result"]["counts"]["created"] == 2 and job["result"]["counts"]["failed"] == 0
    assert (ana["first_name"], ana["last_name"], ana["phone"]) == ("Ana", "Lima", "+14155550134")
    assert ana["address"] == {
        "street": "1 Market St",
        "city": "San Francisco",
        "state_province": "CA",
        "postal_code": "94105",
        "country": "US",
    }
    assert _businesses(db, ana) == ["Acme"] and _tags(db, tenant, ana) == ["Friends"]
    assert contacts(db, tenant.account_id, email="bob@example.com")[0]["phone"] == "+442079460958"


LINKEDIN_PREAMBLE = (
    'Notes:\r\n"When exporting your connection data, you may notice that some of the email addresses '
    "are missing. You will only see email addresses for connections who have allowed their "
    "connections to see or download their email address using this setting "
    "https://www.linkedin.com/psettings/privacy/email. You can learn more here "
    'https://www.linkedin.com/help/linkedin/answer/261"\r\n\r\n'
)


def test_a_linkedin_connections_file_is_read_under_its_notes(client, db, worker, tenant):
    rows = [
        {
            "First Name": "Ana",
            "Last Name": "Lima",
            "URL": "https://www.linkedin.com/in/ana-lima",
            "Email Address": "ana@example.com",
            "Company": "Acme",
            "Position": "CEO",
            "Connected On": "15 Jan 2025",
        },
        {
            "First Name": "Bob",
            "Last Name": "Stone",
            "URL": "https://www.linkedin.com/in/bob",
            "Email Address": "",
            "Company": "Globex, Inc.",
            "Position": "CTO",
            "Connected On": "02 Feb 2024",
        },
    ]
    headers = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
    content = LINKEDIN_PREAMBLE.encode() + _csv(headers, rows)
    job = run_import(client, db, tenant, content, "Connections.csv")
    bob = contacts(db, tenant.account_id, type="person", first_name="Bob")[0]

    assert job["status"] == "completed" and job["result"]["counts"]["created"] == 2
    assert job["result"]["file"]["header_row"] == 4
    assert bob["website"] == "https://www.linkedin.com/in/bob" and _businesses(db, bob) == ["Globex, Inc."]
    assert contacts(db, tenant.account_id, email="ana@example.com")[0]["last_name"] == "Lima"


def test_a_pipedrive_people_export_imports_and_its_deals_export_matches(client, db, worker, tenant):
    headers = [
        "Person - ID",
        "Person - Name",
        "Person - Label",
        "Person - Organization",
        "Person - Email - Work",
        "Person - Email - Home",
        "Person - Phone - Work",
        "Person - Phone - Mobile",
        "Person - Owner",
        "Person - Postal address",
        "Organization - Name",
    ]
    rows = [
        {
            "Person - ID": "17",
            "Person - Name": "Ana Lima",
            "Person - Label": "Hot lead",
            "Person - Organization": "Acme",
            "Person - Email - Work": "ana@acme.com",
            "Person - Phone - Mobile": "+351 912 345 678",
            "Person - Owner": "Jane Doe",
            "Person - Postal address": "Rua Augusta 1, Lisboa",
            "Organization - Name": "Acme",
        },
        {
            "Person - ID": "18",
            "Person - Name": "Bob",
            "Person - Email - Home": "bob@example.com",
            "Person - Owner": "Jane Doe",
        },
    ]
    job = run_import(client, db, tenant, _csv(headers, rows), "people-export.csv")
    ana = contacts(db, tenant.account_id, email="ana@acme.com")[0]
    deals = _csv(
        [
            "Deal - ID",
            "Deal - Title",
            "Deal - Owner",
            "Deal - Value",
            "Deal - Currency",
            "Deal - Pipeline",
            "Deal - Stage",
            "Deal - Status",
            "Deal - Expected close date",
            "Person - Email - Work",
        ],
        [
            {
                "Deal - ID": "5",
                "Deal - Title": "Acme renewal",
                "Deal - Owner": "Jane Doe",
                "Deal - Value": "1500",
                "Deal - Currency": "EUR",
                "Deal - Pipeline": "Sales",
                "Deal - Stage": "Proposal",
                "Deal - Status": "open",
                "Deal - Expected close date": "2025-06-30",
                "Person - Email - Work": "ana@acme.com",
            }
        ],
    )
    matched = preview(client, tenant, deals, "deals-export.csv", entity="deals").get_json()["mapping"]

    assert job["result"]["counts"]["created"] == 2 and job["result"]["counts"]["failed"] == 0
    assert (ana["first_name"], ana["last_name"], ana["phone"]) == ("Ana", "Lima", "+351912345678")
    assert ana["address"] == {"street": "Rua Augusta 1, Lisboa"} and _tags(db, tenant, ana) == ["Hot lead"]
    assert job["result"]["mapping"]["Person - Email - Work"] == "email"
    assert "Person - Owner" in job["result"]["ignored_columns"]
    assert matched == {
        "Deal - ID": "external_id",
        "Deal - Title": "name",
        "Deal - Value": "value",
        "Deal - Currency": "currency",
        "Deal - Pipeline": "pipeline",
        "Deal - Stage": "stage",
        "Deal - Status": "status",
        "Deal - Expected close date": "expected_close_date",
        "Person - Email - Work": "contact_email",
    }


MAILCHIMP = [
    "Email Address",
    "First Name",
    "Last Name",
    "Address",
    "Phone Number",
    "Birthday",
    "Company",
    "MEMBER_RATING",
    "OPTIN_TIME",
    "OPTIN_IP",
    "CONFIRM_TIME",
    "CONFIRM_IP",
    "LATITUDE",
    "LONGITUDE",
    "GMTOFF",
    "DSTOFF",
    "TIMEZONE",
    "CC",
    "REGION",
    "LAST_CHANGED",
    "LEID",
    "EUID",
    "NOTES",
    "TAGS",
]


def test_a_mailchimp_audience_imports_with_its_quoted_tags_and_country_code(client, db, worker, tenant):
    rows = [
        {
            "Email Address": "ana@example.com",
            "First Name": "Ana",
            "Last Name": "Lima",
            "Address": "1 Market St  San Francisco  CA  94105  US",
            "Phone Number": "+1 415 555 0134",
            "Company": "Acme",
            "MEMBER_RATING": "2",
            "OPTIN_TIME": "2024-01-05 10:00:00",
            "CC": "US",
            "REGION": "CA",
            "LEID": "123456789",
            "EUID": "a1b2c3",
            "TAGS": '"Lorem Editors","VIP"',
        },
        {
            "Email Address": "bob@example.com",
            "First Name": "Bob",
            "MEMBER_RATING": "1",
            "LEID": "123456790",
            "TAGS": '"Lorem Editors"',
        },
    ]
    job = run_import(client, db, tenant, _csv(MAILCHIMP, rows), "subscribed_members_export_1a2b.csv")
    ana = contacts(db, tenant.account_id, email="ana@example.com")[0]

    assert job["result"]["counts"]["created"] == 2 and job["result"]["counts"]["failed"] == 0
    assert ana["phone"] == "+14155550134" and _businesses(db, ana) == ["Acme"]
    assert ana["address"] == {
        "street": "1 Market St  San Francisco  CA  94105  US",
        "state_province": "CA",
        "country": "US",
    }
    assert _tags(db, tenant, ana) == ["Lorem Editors", "VIP"]


ENCODED = {  # encoding -> (people in their own script, the name the file is read as)
    "iso8859_2": (
        [
            ("Łukasz", "Żółć", "Spółka Źródło", "Łódź"),
            ("Grzegorz", "Brzęczyszczykiewicz", "Wąchock Sp.", "Kraków"),
            ("Małgorzata", "Wiśniewska", "Zakład Mięsny", "Gdańsk"),
        ],
        "iso-8859-2",
    ),
    "cp1251": (
        [
            ("Иван", "Петров", "Рога и копыта", "Москва"),
            ("Мария", "Сидорова", "Газпром", "Санкт-Петербург"),
            ("Сергей", "Кузнецов", "Яндекс", "Казань"),
        ],
        "windows-1251",
    ),
    "shift_jis": (
        [
            ("太郎", "山田", "株式会社サンプル", "東京都"),
            ("花子", "鈴木", "テスト商事", "大阪市"),
            ("一郎", "佐藤", "日本電気", "名古屋市"),
        ],
        "shift_jis",
    ),
}


def test_files_in_iso_8859_2_windows_1251_and_shift_jis_are_read_in_their_encoding(client, db, worker, tenant):
    headers = ["First Name", "Last Name", "Email", "Company", "City"]
    for codec, (people, expected) in ENCODED.items():
        rows = [
            {"First Name": f, "Last Name": last, "Email": f"{codec}{i}@example.com", "Company": c, "City": city}
            for i, (f, last, c, city) in enumerate(people * 4)
        ]
        job = run_import(client, db, tenant, _csv(headers, rows, encoding=codec), f"{codec}.csv")
        first = contacts(db, tenant.account_id, email=f"{codec}0@example.com")[0]

        assert job["result"]["file"]["encoding"] == expected, codec
        assert job["result"]["counts"]["created"] == 12
        assert (first["first_name"], first["last_name"], first["address"]["city"]) == people[0][:2] + people[0][3:]
        assert _businesses(db, first) == [people[0][2]]
