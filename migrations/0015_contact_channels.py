"""Channels (#5, H1): the channels a person chose to be told on.

``contact.notify_channels`` is a JSON list of channel names (``["email",
"sms"]``); NULL means every channel that reaches them. Messages about packages
addressed to a contact honour it (``Recipient.channels``); the staff rooms
(Slack, Teams) are not the person's to choose and are unaffected.
"""


def upgrade(m):
    m.execute("ALTER TABLE contact ADD COLUMN notify_channels TEXT")
