"""Who is a coordinator: listed in the config, or holding power level ≥ 50 in the coordination
room, where the creators of a room version 12 room hold unlimited power.

The power rule lives here, once: ``creators_are_privileged`` (which room versions give creators
unlimited power) and ``power_level`` (a user's power from the room's create event and power
levels). ``bot.matrix_port`` uses the same rule when it creates rooms.

Power levels come from server state: one state request, cached until the bot's sync shows a
power-levels event in that room (``invalidate``: the change applies to the next command) or the
TTL passes (for a coordination room the bot is not in). The creators never change; they are read
once from the room's ``m.room.create`` event.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, RoomGetStateEventError, RoomResolveAliasError

from commands.context import Role
from commands.parsing import is_digits
from config.settings import Settings

log = logging.getLogger(__name__)
COORDINATOR_LEVEL = 50


def creators_are_privileged(room_version: str | None) -> bool:
    """Room version 12 and later give creators unlimited power; they must not be listed in the
    power levels (a homeserver refuses a room whose power levels name a creator)."""
    if not room_version:
        return False
    return (is_digits(room_version) and int(room_version) >= 12) or "hydra" in room_version


def privileged_creators(create_event: dict[str, Any]) -> frozenset[str]:
    """The users with unlimited power by creating the room: the sender of ``m.room.create`` and
    its ``additional_creators``, if the room's version gives creators that power; else none."""
    content = create_event.get("content") or {}
    if not creators_are_privileged(str(content.get("room_version") or "1")):
        return frozenset()
    additional = content.get("additional_creators")
    users = [create_event.get("sender"), *(additional if isinstance(additional, list) else [])]
    return frozenset(u for u in users if isinstance(u, str) and u)


def power_level(user_id: str, power_levels: dict[str, Any], creators: frozenset[str] = frozenset()) -> float:
    """``user_id``'s power in a room: unlimited for a privileged creator, else from the power
    levels (``users``, then ``users_default``)."""
    if user_id in creators:
        return math.inf
    users = power_levels.get("users") or {}
    try:
        return int(users.get(user_id, power_levels.get("users_default", 0)))
    except (TypeError, ValueError):  # a malformed power-levels event grants nothing
        return 0


async def read_create_event(client: AsyncClient, room_id: str) -> dict[str, Any] | None:
    """The room's ``m.room.create`` event with its sender (``format=event``), or None."""
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.create/?format=event"
    try:
        response = await client.send("GET", path, headers={"Authorization": f"Bearer {client.access_token}"})
        body = await response.json()
    except Exception as exc:  # unreachable, or not JSON: treated as "no creators known"
        log.warning("cannot read the create event of %s: %s", room_id, exc)
        return None
    if response.status != 200 or not isinstance(body, dict):
        log.warning("cannot read the create event of %s: %s", room_id, body)
        return None
    if "content" not in body:  # a server that ignores format=event answers with the content
        body = {"content": body, "sender": body.get("creator")}
    return body


class RoleResolver:
    def __init__(self, settings: Settings, client: AsyncClient, ttl_seconds: float = 300):
        self.coordinators = set(settings.coordinators)
        self.room = settings.coordination_room
        self.client = client
        self.ttl = ttl_seconds
        self._room_id: str | None = None
        self._fetched: tuple[float, dict[str, Any]] | None = None
        self._creators: frozenset[str] | None = None

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

    async def _power_levels(self, room_id: str) -> dict[str, Any]:
        now = time.monotonic()
        if self._fetched is None or now - self._fetched[0] > self.ttl:
            response = await self.client.room_get_state_event(room_id, "m.room.power_levels")
            if isinstance(response, RoomGetStateEventError):
                log.warning("cannot read power levels of %s: %s", room_id, response.message)
                return {}
            self._fetched = (now, response.content)
        return self._fetched[1]

    async def _room_creators(self, room_id: str) -> frozenset[str]:
        if self._creators is None:
            event = await read_create_event(self.client, room_id)
            if event is None:
                return frozenset()  # asked again next time
            self._creators = privileged_creators(event)
        return self._creators

    async def __call__(self, user_id: str) -> Role:
        if user_id in self.coordinators:
            return Role.COORDINATOR
        room_id = await self.room_id()
        if room_id:
            creators = await self._room_creators(room_id)
            levels = {} if user_id in creators else await self._power_levels(room_id)
            if power_level(user_id, levels, creators) >= COORDINATOR_LEVEL:
                return Role.COORDINATOR
        return Role.MEMBER
