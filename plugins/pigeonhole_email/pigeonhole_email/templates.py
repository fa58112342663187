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

#: Staff accounts (sign-in, issue #3): ``link`` is the single-use set-password
#: link, ``email`` the account's address, ``expires`` when the link stops working.
ACCOUNT_TEMPLATES: dict[str, dict[str, EmailTemplate]] = {
    "account.welcome": {
        "en": _t(
            "Welcome to $tenant_name: choose your password",
            "Hello $name,",
            "An account has been created for you at $tenant_name, for the address $email.",
            "Choose your password with this link: $link",
            "The link works once and expires on $expires.",
            "If you did not expect this message, you can ignore it.",
            "$tenant_name",
        ),
        "fr": _t(
            "Bienvenue chez $tenant_name : choisissez votre mot de passe",
            "Bonjour $name,",
            "Un compte a été créé pour vous chez $tenant_name, pour l'adresse $email.",
            "Choisissez votre mot de passe avec ce lien : $link",
            "Le lien ne sert qu'une fois et expire le $expires.",
            "Si vous n'attendiez pas ce message, vous pouvez l'ignorer.",
            "$tenant_name",
        ),
    },
    "account.password_reset": {
        "en": _t(
            "Reset your $tenant_name password",
            "Hello $name,",
            "Someone asked to reset the password of the account $email. If it was you, "
            "choose a new password with this link: $link",
            "The link works once and expires on $expires. Your current password keeps working until then.",
            "If it was not you, ignore this message: nothing changes.",
            "$tenant_name",
        ),
        "fr": _t(
            "Réinitialisez votre mot de passe $tenant_name",
            "Bonjour $name,",
            "Quelqu'un a demandé à réinitialiser le mot de passe du compte $email. Si c'est vous, "
            "choisissez un nouveau mot de passe avec ce lien : $link",
            "Le lien ne sert qu'une fois et expire le $expires. "
            "Votre mot de passe actuel reste valable jusque-là.",
            "Si ce n'est pas vous, ignorez ce message : rien ne change.",
            "$tenant_name",
        ),
    },
}

#: Alerts to a tenant's administrators (directory, issue #6): a scheduled import
#: failed. ``schedule_name``, ``source``, ``message`` (why), ``failed_at``.
STAFF_ALERTS: dict[str, dict[str, EmailTemplate]] = {
    "directory.import_failed": {
        "en": _t(
            "Scheduled import '$schedule_name' failed",
            "Hello $name,",
            "The scheduled import '$schedule_name' ($kind from $source) did not import anything at $failed_at.",
            "Reason: $message",
            "The import history (GET /directory/imports) has the whole report ($import_id).",
            "$tenant_name",
        ),
        "fr": _t(
            "L'import planifié « $schedule_name » a échoué",
            "Bonjour $name,",
            "L'import planifié « $schedule_name » ($kind depuis $source) n'a rien importé le $failed_at.",
            "Raison\u00a0: $message",
            "L'historique des imports (GET /directory/imports) contient le rapport complet ($import_id).",
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
    by_language = TEMPLATES.get(event) or ACCOUNT_TEMPLATES.get(event) or STAFF_ALERTS.get(event) or GENERIC
    return by_language.get(language) or by_language[FALLBACK_LANGUAGE]
