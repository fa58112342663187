import asyncio
from uuid import uuid4


class Listener:
    """What the host's door listener offers a driver: ids and door_changed."""

    def __init__(self, tenant_id=None, bank_id=None):
        self.tenant_id = tenant_id or uuid4()
        self.bank_id = bank_id or uuid4()
        self.changes = []
        self.loops = []

    async def door_changed(self, door, state):
        self.changes.append((door, state))
        self.loops.append(asyncio.get_running_loop())
