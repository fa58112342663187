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

_EN_QR = "Or scan the QR code (if you cannot scan it, type this code at the kiosk: $qr)"
_FR_QR = "Ou scannez le code QR (si vous ne pouvez pas le scanner, saisissez ce code à la borne\u00a0: $qr)"
_EN_COUNTER_HOURS = "Counter hours: $counter_hours"
_FR_COUNTER_HOURS = "Horaires du comptoir\u00a0: $counter_hours"
_EN_SITE = "Locker bank: $bank_name, $place"
_FR_SITE = "Consigne\u00a0: $bank_name, $place"

TEMPLATES: dict[str, dict[str, EmailTemplate]] = {
    "package.ready": {
        "en": _t(
            "Your package is ready for pickup at $location_name",
            "Hello $name,",
            "Your package is waiting for you in locker bank $bank_name at $place.",
            "Pickup code: $code",
            _EN_QR,
            "Door: $compartment",
            "Doors: $compartments",
            "Please pick it up before $expires.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis vous attend à $location_name",
            "Bonjour $name,",
            "Votre colis vous attend dans la consigne $bank_name, à $place.",
            "Code de retrait\u00a0: $code",
            _FR_QR,
            "Casier\u00a0: $compartment",
            "Casiers\u00a0: $compartments",
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
            "Reminder $reminder of $reminders.",
            "Use the pickup code from our first email. Please pick it up before $expires: "
            "after that the code stops working.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Rappel\u00a0: votre colis vous attend à $location_name",
            "Bonjour $name,",
            "Votre colis vous attend toujours dans la consigne $bank_name, à $place.",
            "Rappel $reminder sur $reminders.",
            "Utilisez le code de retrait de notre premier message. Merci de le retirer avant le $expires\u00a0: "
            "passé ce délai, le code ne fonctionnera plus.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.escalated": {
        "en": _t(
            "Package waiting for $hours_waiting hours at $location_name",
            "Hello $name,",
            "A package for $recipient_name has been waiting in locker bank $bank_name at $place "
            "for $hours_waiting hours.",
            "Please pick it up, or arrange for it to be collected, before $expires.",
            "Use the pickup code from the first email.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Colis en attente depuis $hours_waiting heures à $location_name",
            "Bonjour $name,",
            "Un colis pour $recipient_name attend dans la consigne $bank_name, à $place, "
            "depuis $hours_waiting heures.",
            "Merci de le retirer, ou de le faire retirer, avant le $expires.",
            "Utilisez le code de retrait du premier message.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.expired": {
        "en": _t(
            "Your pickup code has expired: your package is at the counter",
            "Hello $name,",
            "Your package was not picked up in time and its pickup code has expired: it no longer opens "
            "the locker.",
            "Your package waits for you at the retail counter of $place. Please bring an ID.",
            _EN_COUNTER_HOURS,
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre code de retrait a expiré\u00a0: votre colis est au comptoir",
            "Bonjour $name,",
            "Votre colis n'a pas été retiré à temps et son code de retrait a expiré\u00a0: il n'ouvre "
            "plus la consigne.",
            "Votre colis vous attend au comptoir de $place. Merci de vous munir d'une pièce d'identité.",
            _FR_COUNTER_HOURS,
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    # Variant for destination = "shelf" (workplace mailrooms, H4): chosen by template_for.
    "package.expired:shelf": {
        "en": _t(
            "Your pickup code has expired: your package moved to shelf storage",
            "Hello $name,",
            "Your package was not picked up in time and its pickup code has expired: it no longer opens "
            "the locker.",
            "Your package has been moved to shelf storage in the mailroom at $place. "
            "Please ask the mailroom to collect it.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre code de retrait a expiré\u00a0: votre colis a été mis en stockage sur étagère",
            "Bonjour $name,",
            "Votre colis n'a pas été retiré à temps et son code de retrait a expiré\u00a0: il n'ouvre "
            "plus la consigne.",
            "Votre colis a été déplacé sur les étagères du service courrier, à $place. "
            "Adressez-vous au service courrier pour le récupérer.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.removed": {
        "en": _t(
            "Your package was taken to the counter",
            "Hello $name,",
            "Your package has been taken out of locker bank $bank_name: the locker code no longer works.",
            "It waits for you at the counter of $place. Please bring an ID.",
            _EN_COUNTER_HOURS,
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis a été déposé au comptoir",
            "Bonjour $name,",
            "Votre colis a été retiré de la consigne $bank_name\u00a0: le code de la consigne ne fonctionne plus.",
            "Il vous attend au comptoir de $place. Merci de vous munir d'une pièce d'identité.",
            _FR_COUNTER_HOURS,
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.removed:shelf": {
        "en": _t(
            "Your package moved to shelf storage",
            "Hello $name,",
            "Your package has been taken out of locker bank $bank_name and moved to shelf storage in the "
            "mailroom at $place: the locker code no longer works.",
            "Please ask the mailroom to collect it.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis a été mis en stockage sur étagère",
            "Bonjour $name,",
            "Votre colis a été retiré de la consigne $bank_name et déplacé sur les étagères du service "
            "courrier, à $place\u00a0: le code de la consigne ne fonctionne plus.",
            "Adressez-vous au service courrier pour le récupérer.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.at_counter": {
        "en": _t(
            "Your package is waiting at the counter of $location_name",
            "Hello $name,",
            "Your package is waiting for you at the counter of $place, not in a locker.",
            "Why: $reason.",
            "Please bring an ID to collect it.",
            _EN_COUNTER_HOURS,
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Votre colis vous attend au comptoir de $location_name",
            "Bonjour $name,",
            "Votre colis vous attend au comptoir de $place, et non dans une consigne.",
            "Raison\u00a0: $reason.",
            "Merci de vous munir d'une pièce d'identité pour le retirer.",
            _FR_COUNTER_HOURS,
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
    "package.code_replaced": {
        "en": _t(
            "Your new pickup code for $location_name",
            "Hello $name,",
            "Here is a new pickup code for your package in locker bank $bank_name at $place. "
            "The previous code no longer works.",
            "Pickup code: $code",
            _EN_QR,
            "Door: $compartment",
            "Please pick it up before $expires.",
            _EN_DETAILS,
            "If you did not ask for a new code, please contact the mailroom.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre nouveau code de retrait pour $location_name",
            "Bonjour $name,",
            "Voici un nouveau code de retrait pour votre colis dans la consigne $bank_name, à $place. "
            "L'ancien code ne fonctionne plus.",
            "Code de retrait\u00a0: $code",
            _FR_QR,
            "Casier\u00a0: $compartment",
            "Merci de le retirer avant le $expires.",
            _FR_DETAILS,
            "Si vous n'avez pas demandé de nouveau code, contactez le service courrier.",
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
    "return.created": {
        "en": _t(
            "Your return drop-off code for $location_name",
            "Hello $name,",
            "Your return is booked. Drop it off in locker bank $bank_name at $place.",
            "Drop-off code: $code",
            _EN_QR,
            "Door: $compartment",
            "The code works until $ends.",
            "Return tracking number: $tracking_id ($carrier)",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre code de dépôt pour votre retour à $location_name",
            "Bonjour $name,",
            "Votre retour est enregistré. Déposez-le dans la consigne $bank_name, à $place.",
            "Code de dépôt\u00a0: $code",
            _FR_QR,
            "Casier\u00a0: $compartment",
            "Le code fonctionne jusqu'au $ends.",
            "Numéro de suivi du retour\u00a0: $tracking_id ($carrier)",
            "$tenant_name",
        ),
    },
    "return.deposited": {
        "en": _t(
            "Your return is in the locker",
            "Hello $name,",
            "Your return is in locker bank $bank_name at $place, waiting for the carrier.",
            "Return tracking number: $tracking_id ($carrier)",
            "We will let you know if anything else is needed.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre retour est dans la consigne",
            "Bonjour $name,",
            "Votre retour est dans la consigne $bank_name, à $place, et attend le transporteur.",
            "Numéro de suivi du retour\u00a0: $tracking_id ($carrier)",
            "Nous vous préviendrons si autre chose est nécessaire.",
            "$tenant_name",
        ),
    },
    "storage.reserved": {
        "en": _t(
            "Your storage locker at $location_name",
            "Hello $name,",
            "A locker is reserved for you in locker bank $bank_name at $place.",
            "Code: $code",
            _EN_QR,
            "Door: $compartment",
            "From $starts.",
            "Until $ends. Please empty the locker by then.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre casier de stockage à $location_name",
            "Bonjour $name,",
            "Un casier vous est réservé dans la consigne $bank_name, à $place.",
            "Code\u00a0: $code",
            _FR_QR,
            "Casier\u00a0: $compartment",
            "À partir du $starts.",
            "Jusqu'au $ends. Merci de vider le casier d'ici là.",
            "$tenant_name",
        ),
    },
    "storage.ending": {
        "en": _t(
            "Your storage locker reservation ends in $minutes_left minutes",
            "Hello $name,",
            "Your reservation of door $compartment in locker bank $bank_name at $place ends at $ends.",
            "Please take your belongings out before then, or extend the reservation.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre réservation de casier se termine dans $minutes_left minutes",
            "Bonjour $name,",
            "Votre réservation du casier $compartment dans la consigne $bank_name, à $place, se termine "
            "le $ends.",
            "Merci de reprendre vos affaires d'ici là, ou de prolonger la réservation.",
            "$tenant_name",
        ),
    },
    "storage.ended": {
        "en": _t(
            "Your storage locker reservation has ended",
            "Hello $name,",
            "Your reservation of door $compartment in locker bank $bank_name at $place has ended; "
            "its code no longer works.",
            "If you left something in it, please contact the mailroom.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre réservation de casier est terminée",
            "Bonjour $name,",
            "Votre réservation du casier $compartment dans la consigne $bank_name, à $place, est terminée\u00a0; "
            "son code ne fonctionne plus.",
            "Si vous y avez laissé quelque chose, contactez le service courrier.",
            "$tenant_name",
        ),
    },
    "storage.ended:expired": {
        "en": _t(
            "Your storage locker reservation has expired",
            "Hello $name,",
            "Your reservation of door $compartment in locker bank $bank_name at $place has run out of time; "
            "its code no longer works.",
            "If you left something in it, please contact the mailroom to get it back.",
            "$tenant_name",
        ),
        "fr": _t(
            "Votre réservation de casier a expiré",
            "Bonjour $name,",
            "Le temps de votre réservation du casier $compartment dans la consigne $bank_name, à $place, "
            "est écoulé\u00a0; son code ne fonctionne plus.",
            "Si vous y avez laissé quelque chose, contactez le service courrier pour le récupérer.",
            "$tenant_name",
        ),
    },
    "delivery.preadvised": {
        "en": _t(
            "A delivery to locker bank $bank_name is on its way",
            "Hello $name,",
            "A package for you is on its way to locker bank $bank_name at $place.",
            "Expected: $expected.",
            "We will send you the pickup code when it is in the locker.",
            _EN_DETAILS,
            "$tenant_name",
        ),
        "fr": _t(
            "Une livraison arrive à la consigne $bank_name",
            "Bonjour $name,",
            "Un colis pour vous est en route vers la consigne $bank_name, à $place.",
            "Arrivée prévue\u00a0: $expected.",
            "Nous vous enverrons le code de retrait dès qu'il sera dans la consigne.",
            _FR_DETAILS,
            "$tenant_name",
        ),
    },
}

#: Events whose built-in email has a variant per value of a data key: (event, key).
VARIANT_KEYS = {"package.expired": "destination", "package.removed": "destination", "storage.ended": "why"}

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

#: Alerts to the tenant's staff (hardware #4, sent as ``alert.<kind>``): ``message`` says what happened.
ALERT_TEMPLATE: dict[str, EmailTemplate] = {
    "en": _t(
        "Alert at $bank_name: $message",
        "Hello $name,",
        "$message.",
        "Locker bank: $bank_name",
        "Door: $door",
        "Raised: $raised",
        "Alert $kind ($alert_id): see GET /alerts to acknowledge it.",
        "$tenant_name",
    ),
    "fr": _t(
        "Alerte à $bank_name\u00a0: $message",
        "Bonjour $name,",
        "$message.",
        "Consigne\u00a0: $bank_name",
        "Casier\u00a0: $door",
        "Levée le\u00a0: $raised",
        "Alerte $kind ($alert_id)\u00a0: voir GET /alerts pour en accuser réception.",
        "$tenant_name",
    ),
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


def _by_language(event: str, data: dict | None = None) -> dict[str, EmailTemplate] | None:
    key = VARIANT_KEYS.get(event)
    if key and data and data.get(key):
        variant = TEMPLATES.get(f"{event}:{data[key]}")
        if variant:
            return variant
    found = TEMPLATES.get(event) or ACCOUNT_TEMPLATES.get(event) or STAFF_ALERTS.get(event)
    if found is None and event.startswith("alert."):
        found = ALERT_TEMPLATE
    return found


def template_for(event: str, language: str, data: dict | None = None) -> EmailTemplate:
    by_language = _by_language(event, data) or GENERIC
    return by_language.get(language) or by_language[FALLBACK_LANGUAGE]


def known(event: str) -> bool:
    """Whether this plugin has its own words for ``event`` (else the generic message)."""
    return _by_language(event) is not None


def as_wording_text(template: EmailTemplate) -> tuple[str, str]:
    """The subject and body in the tenant-wording syntax: paragraphs separated by blank lines."""
    return template.subject.template, "\n\n".join(p.template for p in template.paragraphs)
