"""What a staff room (Slack, Teams...) reads about an event: a title, a sentence and facts, in English or French.

A room is shared by the mailroom's staff: it is told that a package is ready,
that a door was forced, never the pickup code or QR token (the host does not
send them to rooms, and :func:`room_view` drops them again if one slips in).
The words are the host's so every room channel, a vendor's too, says the same
thing about an event; channel plugins reach them through
:meth:`pigeonhole.api.RoomChannel.room_view`.
"""

from __future__ import annotations

from datetime import datetime
from string import Template
from typing import Any, NamedTuple

from pigeonhole.api import ROOM_SECRETS, Notification

TITLES: dict[str, dict[str, str]] = {
    "package.ready": {"en": "Package ready for pickup", "fr": "Colis disponible"},
    "package.reminder": {"en": "Pickup reminder sent", "fr": "Rappel envoyé"},
    "package.escalated": {"en": "Package waiting too long", "fr": "Colis en attente depuis trop longtemps"},
    "package.expired": {"en": "Package expired", "fr": "Colis expiré"},
    "package.removed": {"en": "Package removed from the locker", "fr": "Colis retiré de la consigne"},
    "package.at_counter": {"en": "Package at the counter", "fr": "Colis au comptoir"},
    "package.code_replaced": {"en": "Pickup code replaced", "fr": "Code de retrait remplacé"},
    "package.picked_up": {"en": "Package picked up", "fr": "Colis retiré"},
    "return.created": {"en": "Return created", "fr": "Retour créé"},
    "return.deposited": {"en": "Return in the locker", "fr": "Retour déposé"},
    "storage.reserved": {"en": "Storage reserved", "fr": "Consigne réservée"},
    "storage.ending": {"en": "Storage ending soon", "fr": "Réservation bientôt terminée"},
    "storage.ended": {"en": "Storage ended", "fr": "Réservation terminée"},
    "delivery.preadvised": {"en": "Delivery announced", "fr": "Livraison annoncée"},
    "alert.door.forced": {"en": "Alert: door forced", "fr": "Alerte : porte forcée"},
    "alert.door.left_open": {"en": "Alert: door left open", "fr": "Alerte : porte restée ouverte"},
    "alert.command.unknown_outcome": {
        "en": "Alert: door command with unknown outcome",
        "fr": "Alerte : commande de porte sans réponse",
    },
    "alert.command.outcome_differs": {
        "en": "Alert: a door did not do what was recorded",
        "fr": "Alerte : une porte n'a pas fait ce qui était enregistré",
    },
}

_PACKAGE = {
    "en": "Package $tracking_id ($carrier) for $recipient_name, locker $bank_name, door $doors.",
    "fr": "Colis $tracking_id ($carrier) pour $recipient_name, consigne $bank_name, casier $doors.",
}
_SHORT = {
    "en": "Package $tracking_id for $recipient_name.",
    "fr": "Colis $tracking_id pour $recipient_name.",
}

FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("tracking_id", "Tracking"), ("carrier", "Carrier"), ("recipient_name", "For"),
        ("bank_name", "Locker bank"), ("doors", "Door"), ("location_name", "Location"),
        ("expires", "Pick up by"), ("ends", "Ends"), ("raised", "Raised"),
    ),
    "fr": (
        ("tracking_id", "Suivi"), ("carrier", "Transporteur"), ("recipient_name", "Pour"),
        ("bank_name", "Consigne"), ("doors", "Casier"), ("location_name", "Lieu"),
        ("expires", "A retirer avant"), ("ends", "Fin"), ("raised", "Levée"),
    ),
}  # fmt: skip


class RoomView(NamedTuple):
    title: str
    text: str
    facts: list[tuple[str, str]]
    footer: str


def _date(value: Any) -> str:
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M") + (at.strftime(" %z") if at.utcoffset() is not None else "")


def room_view(notification: Notification, language: str) -> RoomView:
    language = language if language in FACTS else "en"
    secrets = {str(v) for k, v in notification.data.items() if k in ROOM_SECRETS and v}
    data = {k: v for k, v in notification.data.items() if k not in ROOM_SECRETS}
    values = {k: "" if v is None else str(v) for k, v in data.items() if not isinstance(v, (list, dict))}
    doors = data.get("compartments")
    if isinstance(doors, list) and doors:
        values["doors"] = ", ".join(map(str, doors))
    else:  # a package's compartment, or an alert's door
        values["doors"] = values.get("compartment") or values.get("door") or ""
    values["expires"] = _date(data.get("expires_at"))
    values["ends"] = _date(data.get("ends_at"))
    values["raised"] = _date(data.get("raised_at"))
    event = notification.event
    title = TITLES.get(event, {}).get(language) or event
    if notification.subject and notification.subject.strip():
        title = notification.subject.strip()
    if notification.text and notification.text.strip():
        text = notification.text.strip()
    elif event.startswith("alert."):
        text = values.get("message") or title
    else:
        text = ""
        for template in (_PACKAGE[language], _SHORT[language]):
            t = Template(template)
            if all(values.get(n) for n in t.get_identifiers()):
                text = t.substitute(values)
                break
        text = text or values.get("message") or title
    for secret in secrets:  # tenant wording that named the code must not show it in a room
        title, text = title.replace(secret, "••••"), text.replace(secret, "••••")
    facts = [(label, values[key]) for key, label in FACTS[language] if values.get(key)]
    return RoomView(title, text, facts, values.get("tenant_name", ""))
