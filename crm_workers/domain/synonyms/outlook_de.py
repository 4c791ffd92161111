"""Microsoft Outlook's CSV export, German labels (older versions say `Land geschäftlich`, newer
`Land/Region geschäftlich`)."""

SYSTEM = "Outlook (German)"

CONTACT = {
    "first_name": ["Vorname"],
    "last_name": ["Nachname"],
    "name": ["Anzeigename"],
    "email": ["E-Mail-Adresse", "E-Mail 2: Adresse", "E-Mail 3: Adresse", "Primäre E-Mail-Adresse"],
    "phone": [
        "Haupttelefon",
        "Mobiltelefon",
        "Telefon geschäftlich",
        "Telefon privat",
        "Telefon Firma",
        "Telefon geschäftlich 2",
        "Telefon privat 2",
        "Weiteres Telefon",
        "Autotelefon",
        "Mobil-Tel.-Nr.",
        "Tel. dienstlich",
    ],
    "website": ["Webseite", "Webseite 1"],
    "business": ["Firma", "Organisation"],
    "address.street": ["Straße geschäftlich", "Straße privat", "Weitere Straße"],
    "address.city": ["Ort geschäftlich", "Ort privat", "Weiterer Ort"],
    "address.state_province": [
        "Region geschäftlich",
        "Bundesland/Kanton geschäftlich",
        "Region privat",
        "Bundesland/Kanton privat",
        "Weitere Region",
    ],
    "address.postal_code": ["Postleitzahl geschäftlich", "Postleitzahl privat", "Weitere Postleitzahl"],
    "address.country": [
        "Land/Region geschäftlich",
        "Land geschäftlich",
        "Land/Region privat",
        "Land privat",
        "Weiteres Land/Region",
        "Weiteres Land",
    ],
    "tags": ["Kategorien"],
}

DEAL: dict[str, list[str]] = {}
