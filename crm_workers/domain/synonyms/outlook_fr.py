"""Microsoft Outlook's CSV export, French labels."""

SYSTEM = "Outlook (French)"

CONTACT = {
    "first_name": ["Prénom"],
    "last_name": ["Nom"],
    "name": ["Nom à afficher", "Nom complet"],
    "email": [
        "Adresse de messagerie",
        "Adresse de messagerie 2",
        "Adresse de messagerie 3",
        "Adresse électronique principale",
        "Adresse e-mail",
        "Courriel",
    ],
    "phone": [
        "Téléphone principal",
        "Tél. mobile",
        "Téléphone mobile",
        "Téléphone (bureau)",
        "Téléphone (domicile)",
        "Téléphone 2 (bureau)",
        "Téléphone 2 (domicile)",
        "Téléphone (autre)",
        "Téléphone (voiture)",
        "Tél. professionnel",
        "Portable",
    ],
    "website": ["Page Web", "Site Web 1", "Site Web"],
    "business": ["Société", "Entreprise"],
    "address.street": ["Rue (bureau)", "Rue (domicile)", "Rue (autre)"],
    "address.city": ["Ville (bureau)", "Ville (domicile)", "Ville (autre)"],
    "address.state_province": [
        "Dép/Région (bureau)",
        "État/Prov (bureau)",
        "Dép/Région (domicile)",
        "État/Prov (domicile)",
        "Dép/Région (autre)",
    ],
    "address.postal_code": ["Code postal (bureau)", "Code postal (domicile)", "Code postal (autre)"],
    "address.country": ["Pays/Région (bureau)", "Pays/Région (domicile)", "Pays/Région (autre)"],
    "tags": ["Catégories"],
}

DEAL: dict[str, list[str]] = {}
