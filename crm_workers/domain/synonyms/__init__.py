"""Header labels of other systems' exports, as data: one module per system or language.

Each module has `SYSTEM` (its name, shown as the source of a match), `CONTACT` and `DEAL` (target → labels,
listed in order of preference: when a file has several labels of one target, the earlier label wins) and
optionally `CONTACT_PATTERNS` / `DEAL_PATTERNS` (regular expressions with a number group, like Google's
`E-mail 1 - Value`: the lower number wins). Labels are compared normalised (see `domain/headers.py`).
"""

from crm_workers.domain.synonyms import (
    common,
    google,
    hubspot,
    linkedin,
    mailchimp,
    outlook_de,
    outlook_en,
    outlook_es,
    outlook_fr,
    pipedrive,
    salesforce,
    zoho,
)

#: The order matters only for a label two modules share: the first module's entry is kept.
MODULES = (
    common,
    google,
    outlook_en,
    outlook_de,
    outlook_fr,
    outlook_es,
    hubspot,
    salesforce,
    zoho,
    pipedrive,
    mailchimp,
    linkedin,
)
