"""The words of every SMS, per event and language.

A text is a tuple of segments joined as they are; a segment naming a value the
notification does not carry is left out (no "Door ." when there is no door).
Each event has variants from the most to the least wordy: the first that fits
in one SMS (160 GSM characters) is sent, else the last. French texts avoid the
letters outside the GSM alphabet (ê, â, ô, ç...), which would cut an SMS to 70
characters.

Placeholders: every key of ``Notification.data``, plus ``name``, ``doors`` (the
door, or the doors when several), ``expires``, ``ends``, ``starts`` (short dates).
"""

from __future__ import annotations

from string import Template

FALLBACK_LANGUAGE = "en"
LIMIT = 160

Text = tuple[str, ...]

TEXTS: dict[str, dict[str, tuple[Text, ...]]] = {
    "package.ready": {
        "en": (
            ("$tenant_name: your package is ready in locker $bank_name", " at $location_name",
             ", door $doors", ". Pickup code: $code", ". Pick up by $expires", "."),
            ("$tenant_name: package ready, locker $bank_name", ", door $doors", ". Code: $code",
             ". By $expires", "."),
            ("Package ready", ", door $doors", ". Code: $code", "."),
        ),
        "fr": (
            ("$tenant_name : votre colis vous attend dans la consigne $bank_name", " ($location_name)",
             ", casier $doors", ". Code de retrait : $code", ". A retirer avant le $expires", "."),
            ("$tenant_name : colis disponible, consigne $bank_name", ", casier $doors", ". Code : $code",
             ". Avant le $expires", "."),
            ("Colis disponible", ", casier $doors", ". Code : $code", "."),
        ),
    },
    "package.reminder": {
        "en": (
            ("$tenant_name reminder", " $reminder/$reminders", ": your package is waiting in locker $bank_name",
             " at $location_name", ". Use the code we sent you", ". Pick up by $expires", "."),
            ("Reminder: your package is waiting in locker $bank_name", ". By $expires", "."),
        ),
        "fr": (
            ("$tenant_name, rappel", " $reminder/$reminders", " : votre colis vous attend dans la consigne $bank_name",
             " ($location_name)", ". Utilisez le code que nous vous avons envoyé", ". Avant le $expires", "."),
            ("Rappel : votre colis vous attend, consigne $bank_name", ". Avant le $expires", "."),
        ),
    },
    "package.escalated": {
        "en": (
            ("$tenant_name: a package for $recipient_name", " has waited $hours_waiting h",
             " in locker $bank_name", " at $location_name", ". Please pick it up", " by $expires", "."),
            ("$tenant_name: your package has waited $hours_waiting h", " in locker $bank_name",
             ". Please pick it up", " by $expires", "."),
            ("A package is still waiting in locker $bank_name", ". By $expires", "."),
        ),
        "fr": (
            ("$tenant_name : un colis pour $recipient_name", " attend depuis $hours_waiting h",
             " dans la consigne $bank_name", " ($location_name)", ". Merci de le retirer", " avant le $expires", "."),
            ("$tenant_name : votre colis attend depuis $hours_waiting h", " dans la consigne $bank_name",
             ". Merci de le retirer", " avant le $expires", "."),
            ("Un colis attend toujours dans la consigne $bank_name", ". Avant le $expires", "."),
        ),
    },
    "package.expired": {
        "en": (
            ("$tenant_name: your pickup code has expired", ". Your package $tracking_id",
             " now waits at the $destination", " ($counter_hours)", "."),
            ("Your pickup code has expired", ". Your package now waits at the $destination", "."),
        ),
        "fr": (
            ("$tenant_name : votre code de retrait a expiré", ". Votre colis $tracking_id",
             " vous attend au $destination_fr", " ($counter_hours)", "."),
            ("Votre code de retrait a expiré", ". Votre colis vous attend au $destination_fr", "."),
        ),
    },
    "package.removed": {
        "en": (
            ("$tenant_name: your package $tracking_id was moved from locker $bank_name",
             " to the $destination", ". Your pickup code no longer works", "."),
            ("Your package was moved from the locker", " to the $destination", "."),
        ),
        "fr": (
            ("$tenant_name : votre colis $tracking_id a été retiré de la consigne $bank_name",
             " et déposé au $destination_fr", ". Votre code de retrait ne fonctionne plus", "."),
            ("Votre colis a été retiré de la consigne", " et déposé au $destination_fr", "."),
        ),
    },
    "package.at_counter": {
        "en": (
            ("$tenant_name: your package $tracking_id", " ($carrier)", " waits for you at the counter",
             " of $location_name", ", not in a locker", " ($reason)", "."),
            ("Your package waits for you at the counter", " of $location_name", "."),
        ),
        "fr": (
            ("$tenant_name : votre colis $tracking_id", " ($carrier)", " vous attend au comptoir",
             " de $location_name", ", pas dans une consigne", " ($reason)", "."),
            ("Votre colis vous attend au comptoir", " de $location_name", "."),
        ),
    },
    "package.code_replaced": {
        "en": (
            ("$tenant_name: your new pickup code for locker $bank_name", ", door $doors", " is $code",
             ". The old code no longer works", ". Pick up by $expires", "."),
            ("New pickup code: $code", ", door $doors", ". The old one no longer works", "."),
        ),
        "fr": (
            ("$tenant_name : votre nouveau code de retrait pour la consigne $bank_name", ", casier $doors",
             " est $code", ". L'ancien code ne fonctionne plus", ". Avant le $expires", "."),
            ("Nouveau code de retrait : $code", ", casier $doors", ". L'ancien ne fonctionne plus", "."),
        ),
    },
    "package.picked_up": {
        "en": (
            ("$tenant_name: your package $tracking_id was picked up", " from locker $bank_name",
             " on $picked_up", ". Not you? Call the mailroom", "."),
            ("Your package was picked up", " on $picked_up", ". Not you? Call the mailroom", "."),
        ),
        "fr": (
            ("$tenant_name : votre colis $tracking_id a été retiré", " de la consigne $bank_name",
             " le $picked_up", ". Pas vous ? Appelez le service courrier", "."),
            ("Votre colis a été retiré", " le $picked_up", ". Pas vous ? Appelez le service courrier", "."),
        ),
    },
    "return.created": {
        "en": (
            ("$tenant_name: drop off your return in locker $bank_name", " at $location_name",
             ", door $doors", ". Drop-off code: $code", ". Valid until $ends", "."),
            ("Return drop-off code: $code", ", locker $bank_name", ". Until $ends", "."),
        ),
        "fr": (
            ("$tenant_name : déposez votre retour dans la consigne $bank_name", " ($location_name)",
             ", casier $doors", ". Code pour le déposer : $code", ". Valable jusqu'au $ends", "."),
            ("Code pour déposer le retour : $code", ", consigne $bank_name", ". Jusqu'au $ends", "."),
        ),
    },
    "return.deposited": {
        "en": (
            ("$tenant_name: your return $tracking_id is in locker $bank_name", " and waits for the carrier", "."),
            ("Your return is in the locker and waits for the carrier.",),
        ),
        "fr": (
            ("$tenant_name : votre retour $tracking_id est dans la consigne $bank_name",
             " et attend le transporteur", "."),
            ("Votre retour est dans la consigne et attend le transporteur.",),
        ),
    },
    "storage.reserved": {
        "en": (
            ("$tenant_name: locker $bank_name", ", door $doors", ", is yours", " from $starts", " until $ends",
             ". Code: $code", "."),
            ("Storage code: $code", ", door $doors", ". Until $ends", "."),
        ),
        "fr": (
            ("$tenant_name : consigne $bank_name", ", casier $doors", ", réservée pour vous", " du $starts",
             " jusqu'au $ends", ". Code : $code", "."),
            ("Code de consigne : $code", ", casier $doors", ". Jusqu'au $ends", "."),
        ),
    },
    "storage.ending": {
        "en": (
            ("$tenant_name: your storage in locker $bank_name", ", door $doors", " ends in $minutes_left min",
             " ($ends)", ". Please empty it or extend it", "."),
            ("Your storage ends in $minutes_left min", ". Please empty it or extend it", "."),
        ),
        "fr": (
            ("$tenant_name : votre réservation de la consigne $bank_name", ", casier $doors",
             " se termine dans $minutes_left min", " ($ends)", ". Videz-la ou prolongez-la", "."),
            ("Votre réservation se termine dans $minutes_left min", ". Videz-la ou prolongez-la", "."),
        ),
    },
    "storage.ended": {
        "en": (
            ("$tenant_name: your storage in locker $bank_name", ", door $doors", " has $why_en",
             ". Your code no longer works", "."),
            ("Your storage has ended. Your code no longer works.",),
        ),
        "fr": (
            ("$tenant_name : votre réservation de la consigne $bank_name", ", casier $doors", " $why_fr",
             ". Votre code ne fonctionne plus", "."),
            ("Votre réservation est terminée. Votre code ne fonctionne plus.",),
        ),
    },
    "delivery.preadvised": {
        "en": (
            ("$tenant_name: a package", " from $carrier", " for you is on its way to locker $bank_name",
             " at $location_name", ". We will text you when it is ready", "."),
            ("A package for you is on its way to the locker.",),
        ),
        "fr": (
            ("$tenant_name : un colis", " de $carrier", " est en route vers la consigne $bank_name",
             " ($location_name)", ". Nous vous préviendrons quand il sera disponible", "."),
            ("Un colis pour vous est en route vers la consigne.",),
        ),
    },
}

GENERIC: dict[str, tuple[Text, ...]] = {
    "en": (
        ("$tenant_name: $message",),
        ("$tenant_name: news about your package $tracking_id", "."),
        ("$tenant_name: $event",),
    ),
    "fr": (
        ("$tenant_name : $message",),
        ("$tenant_name : du nouveau pour votre colis $tracking_id", "."),
        ("$tenant_name : $event",),
    ),
}

_DESTINATIONS_FR = {"counter": "comptoir", "shelf": "service courrier", "mailroom": "service courrier"}
_WHY = {"ended": ("ended", "est terminée"), "expired": ("expired", "a expiré")}


def variants_for(event: str, language: str) -> tuple[Text, ...]:
    by_language = TEXTS.get(event)
    if by_language is None:
        by_language = GENERIC
    return by_language.get(language) or by_language[FALLBACK_LANGUAGE]


def compose(variants: tuple[Text, ...], values: dict[str, str], limit: int = LIMIT) -> str:
    texts = [_fill(v, values) for v in variants]
    texts = [t for t in texts if t.strip(" .:")]
    if not texts:
        return ""
    return next((t for t in texts if len(t) <= limit), texts[-1])


def _fill(segments: Text, values: dict[str, str]) -> str:
    out = []
    for position, segment in enumerate(segments):
        template = Template(segment)
        if all(values.get(name) for name in template.get_identifiers()):
            out.append(template.substitute(values))
        elif position == 0:
            return ""  # the first segment carries the sense: no text without it
    return "".join(out).strip()


def extra_values(data: dict, language: str) -> dict[str, str]:
    destination = str(data.get("destination") or "")
    why = _WHY.get(str(data.get("why") or ""), ("ended", "est terminée"))
    return {
        "destination_fr": _DESTINATIONS_FR.get(destination, destination),
        "why_en": why[0],
        "why_fr": why[1],
    }
