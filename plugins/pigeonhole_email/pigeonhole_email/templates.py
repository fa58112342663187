"""The words of every email, per event and language.

A body is a list of paragraphs. A paragraph naming a value the notification
does not carry (no address, no deadline) is left out rather than printed with
a hole, so one template serves sites that fill in more or less.

Placeholders: every key of ``Notification.data``, plus ``name`` (the
recipient), ``event``, ``place`` (location name and address), ``expires`` and
``picked_up`` (dates written out in the message's language).
"""

from __future__ import annotations

from string import Template
from typing import NamedTuple

FALLBACK_LANGUAGE = "en"


class EmailTemplate(NamedTuple):
    subject: Template
    paragraphs: tuple[Template, ...]


def _t(subject: str, *paragraphs: str) -> EmailTemplate:
    return EmailTemplate(Template(subject), tuple(Template(p) for p in paragraphs))


_EN_DETAILS = "Tracking number: $tracking_id ($carrier)"
_FR_DETAILS = "Numéro de suivi\u00a0: $tracking_id ($carrier)"

TEMPLATES: dict[str, dict[str, EmailTemplate]] = {
    "package.ready": {
        "en": _t(
            "Your package is ready for pickup at $location_name",
            "Hello $name,",
            "Your package is waiting for you in locker bank $bank_name at $place.",
            "Pickup code: $code",
            "Door: $compartment",
            "Please pick it up before $expires.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis vous attend à $location_name",
            "Bonjour $name,",
            "Votre colis vous attend dans la consigne $bank_name, à $place.",
            "Code de retrait\u00a0: $code",
            "Casier\u00a0: $compartment",
            "Merci de le retirer avant le $expires.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.reminder": {
        "en": _t(
            "Reminder: your package is waiting at $location_name",
            "Hello $name,",
            "Your package is still waiting for you in locker bank $bank_name at $place.",
            "Use the pickup code from our first email. Please pick it up before $expires.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Rappel\u00a0: votre colis vous attend à $location_name",
            "Bonjour $name,",
            "Votre colis vous attend toujours dans la consigne $bank_name, à $place.",
            "Utilisez le code de retrait de notre premier message. Merci de le retirer avant le $expires.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.picked_up": {
        "en": _t(
            "Your package has been picked up",
            "Hello $name,",
            "Your package was picked up from locker bank $bank_name at $place.",
            "Picked up: $picked_up",
            _EN_DETAILS,
            "If this was not you, please contact the mailroom right away.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis a été retiré",
            "Bonjour $name,",
            "Votre colis a été retiré de la consigne $bank_name, à $place.",
            "Retiré le\u00a0: $picked_up",
            _FR_DETAILS,
            "Si ce n'était pas vous, contactez le service courrier sans attendre.",
            "$tenant_name",
        ),
    },
    "package.expired": {
        "en": _t(
            "Your pickup code has expired",
            "Hello $name,",
            "Your package was not picked up in time and its pickup code has expired.",
            "It has been moved out of locker bank $bank_name to the mailroom. "
            "Please contact the mailroom to collect it.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre code de retrait a expiré",
            "Bonjour $name,",
            "Votre colis n'a pas été retiré à temps et son code de retrait a expiré.",
            "Il a été retiré de la consigne $bank_name et déposé au service courrier. "
            "Merci de contacter le service courrier pour le récupérer.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
}

GENERIC: dict[str, EmailTemplate] = {
    "en": _t(
        "News about your package",
        "Hello $name,",
        "There is news about your package: $event.",
        _EN_DETAILS,
        "$tenant_name",
    ),
    "fr": _t(
        "Du nouveau pour votre colis",
        "Bonjour $name,",
        "Du nouveau pour votre colis\u00a0: $event.",
        _FR_DETAILS,
        "$tenant_name",
    ),
}


def template_for(event: str, language: str) -> EmailTemplate:
    by_language = TEMPLATES.get(event, GENERIC)
    return by_language.get(language) or by_language[FALLBACK_LANGUAGE]
