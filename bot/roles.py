"""Who is a coordinator: listed in the config, or power level ≥ 50 in the coordination room.

Power levels come from server state: one state request, cached until the bot's sync shows a
power-levels event in that room (``invalidate``: the change applies to the next command) or the
TTL passes (for a coordination room the bot is not in).
"""

from __future__ import annotations

import logging
import time

from nio import AsyncClient, RoomGetStateEventError, RoomResolveAliasError

from commands.context import Role
from config.settings import Settings

log = logging.getLogger(__name__)
COORDINATOR_LEVEL = 50


class RoleResolver:
    def __init__(self, settings: Settings, client: AsyncClient, ttl_seconds: float = 300):
        self.coordinators = set(settings.coordinators)
        self.room = settings.coordination_room
        self.client = client
        self.ttl = ttl_seconds
        self._room_id: str | None = None
        self._fetched: tuple[float, dict] | None = None

    async def room_id(self) -> str | None:
        if self._room_id is None and self.room:
            if self.room.startswith("#"):
                response = await self.client.room_resolve_alias(self.room)
                if isinstance(response, RoomResolveAliasError):
                    log.warning("coordination room %s not found: %s", self.room, response.message)
                    return None
                self._room_id = response.room_id
            else:
                self._room_id = self.room
        return self._room_id

    def invalidate(self, room_id: str) -> None:
        if room_id == self._room_id:
            self._fetched = None

    async def _level(self, room_id: str, user_id: str) -> int:
        now = time.monotonic()
        if self._fetched is None or now - self._fetched[0] > self.ttl:
            response = await self.client.room_get_state_event(room_id, "m.room.power_levels")
            if isinstance(response, RoomGetStateEventError):
                log.warning("cannot read power levels of %s: %s", room_id, response.message)
                return 0
            self._fetched = (now, response.content)
        content = self._fetched[1]
        return int(content.get("users", {}).get(user_id, content.get("users_default", 0)))

    async def __call__(self, user_id: str) -> Role:
        if user_id in self.coordinators:
            return Role.COORDINATOR
        room_id = await self.room_id()
        if room_id and await self._level(room_id, user_id) >= COORDINATOR_LEVEL:
            return Role.COORDINATOR
        return Role.MEMBER
