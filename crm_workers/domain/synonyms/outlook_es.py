"""Microsoft Outlook's CSV export, Spanish labels."""

SYSTEM = "Outlook (Spanish)"

CONTACT = {
    "first_name": ["Nombre"],
    "last_name": ["Apellidos", "Apellido"],
    "name": ["Nombre en pantalla", "Nombre completo"],
    "email": [
        "Dirección de correo electrónico",
        "Dirección de correo electrónico 2",
        "Dirección del correo electrónico 3",
        "Dirección de correo electrónico principal",
        "Correo electrónico",
    ],
    "phone": [
        "Teléfono principal",
        "Móvil",
        "Teléfono móvil",
        "Teléfono del trabajo",
        "Particular",
        "Teléfono del trabajo 2",
        "Otro teléfono",
        "Teléfono (Trabajo)",
    ],
    "website": ["Página web", "Página web 1"],
    "business": ["Organización", "Compañía", "Empresa"],
    "address.street": ["Calle del trabajo", "Calle del domicilio", "Otra calle", "Dirección de trabajo"],
    "address.city": ["Ciudad de trabajo", "Ciudad de residencia", "Ciudad del domicilio", "Otra ciudad"],
    "address.state_province": [
        "Provincia o estado de trabajo",
        "Provincia o estado de residencia",
        "Provincia o estado del domicilio",
        "Otra provincia o estado",
    ],
    "address.postal_code": [
        "Código postal del trabajo",
        "Código postal de residencia",
        "Código postal del domicilio",
        "Otro código postal",
    ],
    "address.country": [
        "País o región del trabajo",
        "País o región de residencia",
        "País o región del domicilio",
        "Otro país o región",
    ],
    "tags": ["Categorías"],
}

DEAL: dict[str, list[str]] = {}
