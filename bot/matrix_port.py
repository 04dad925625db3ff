"""The real ``MatrixPort``: room operations on the homeserver through nio.

Room creation with a ``txn_key`` is idempotent, as sending with a transaction ID is: the room
gets a local alias derived from the key, and the homeserver refuses a second room with the same
alias (``M_ROOM_IN_USE``), so a retry after a lost answer or a crash returns the first room.
The alias stays out of sight (no canonical alias); the room carries the key in a state event.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from nio import (
    AsyncClient,
    ErrorResponse,
    JoinedMembersError,
    ProfileGetError,
    RoomCreateError,
    RoomGetStateEventError,
    RoomPreset,
    RoomResolveAliasError,
)

from bot.roles import creators_are_privileged, read_create_event
from bot.sending import MessageSender, event_bytes, session_gone
from commands.context import MatrixError, Reply, Request, SessionLost

log = logging.getLogger(__name__)
ROOM_KEY_EVENT = "de.kleinstadtakademie.room_key"  # state event: the key a room was made with
PINNED = "m.room.pinned_events"
MEMBER_LOOKUPS = 8  # member lists asked for at once while looking for direct chats


def room_key_alias(bot_user_id: str, key: str) -> str:
    """The local alias (without ``#`` and server) that stands for "the room made with ``key``":
    the bot's localpart, the key in readable form and a digest that keeps keys apart."""
    localpart = bot_user_id.split(":", 1)[0].lstrip("@")
    readable = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:40]
    digest = hashlib.sha256(f"{bot_user_id}\n{key}".encode()).hexdigest()[:12]
    return f"{localpart}.{readable}.{digest}"


def _check(response: Any, what: str) -> Any:
    if isinstance(response, ErrorResponse):
        if session_gone(response):
            raise SessionLost(f"{what}: {response.status_code} {response.message}", response.status_code)
        raise MatrixError(f"{what}: {response.status_code} {response.message}", response.status_code)
    return response


def _creator_listed_refused(response: Any) -> bool:
    """The homeserver refused a room because its creator is listed in the power levels (room
    version 12 and later: "Creator user … must not appear in content.users")."""
    return isinstance(response, RoomCreateError) and "creator" in (response.message or "").lower()


class NioMatrix:
    def __init__(self, client: AsyncClient, sender: MessageSender):
        self.client = client
        self.sender = sender
        self._default_version: str | None = None

    async def default_room_version(self) -> str | None:
        """The homeserver's default room version (from /capabilities), asked once."""
        if self._default_version is None:
            try:
                response = await self.client.send(
                    "GET",
                    "/_matrix/client/v3/capabilities",
                    headers={"Authorization": f"Bearer {self.client.access_token}"},
                )
                body = await response.json()
                self._default_version = body["capabilities"]["m.room_versions"]["default"]
            except Exception:  # an old or odd server: assume a version without the rule
                self._default_version = ""
        return self._default_version or None

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def send(self, reply: Reply, request: Request | None = None) -> str | None:
        return await self.sender.send(reply, request)

    async def create_room(
        self,
        *,
        name: str,
        topic: str | None = None,
        invite: list[str] | None = None,
        power_levels: dict[str, Any] | None = None,
        encrypted: bool = False,
        space: bool = False,
        initial_state: list[dict[str, Any]] | None = None,
        preset: str = "private_chat",
        txn_key: str | None = None,
        room_version: str | None = None,
    ) -> str:
        state = list(initial_state or [])
        if encrypted and not any(e.get("type") == "m.room.encryption" for e in state):
            state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        unknown_version = False
        if power_levels and "users" in power_levels:
            version = room_version or await self.default_room_version()
            if creators_are_privileged(version):
                power_levels = self._without_creator(power_levels)
            unknown_version = version is None
        alias = room_key_alias(self.user_id, txn_key) if txn_key else None
        if txn_key:
            state += [
                {"type": "m.room.canonical_alias", "state_key": "", "content": {}},
                {"type": ROOM_KEY_EVENT, "state_key": "", "content": {"key": txn_key}},
            ]

        async def create(alias: str | None) -> Any:
            return await self.client.room_create(
                name=name,
                topic=topic,
                alias=alias,
                invite=list(invite or []),
                initial_state=state,
                power_level_override=power_levels,
                preset=RoomPreset(preset),
                space=space,
                room_version=room_version,
            )

        response = await create(alias)
        if unknown_version and power_levels and _creator_listed_refused(response):
            # the default version was unknown and gives creators unlimited power after all
            power_levels = self._without_creator(power_levels)
            response = await create(alias)
        if isinstance(response, RoomCreateError) and alias and response.status_code == "M_ROOM_IN_USE":
            existing = await self._made_with_key(alias, txn_key or "")
            if existing is not None:
                log.info("room %r exists already (key %s): %s", name, txn_key, existing)
                return existing
            # someone else holds the alias, or a creation broke off half-way: a room without it
            log.warning("alias #%s is not a room the bot made with key %s; creating without", alias, txn_key)
            response = await create(None)
        if isinstance(response, RoomCreateError):
            raise MatrixError(f"creating room {name!r}: {response.message}", response.status_code)
        return response.room_id

    def _without_creator(self, power_levels: dict[str, Any]) -> dict[str, Any]:
        users = {u: lvl for u, lvl in power_levels["users"].items() if u != self.user_id}
        return {**power_levels, "users": users}

    async def _made_with_key(self, alias: str, key: str) -> str | None:
        """The room behind ``#alias`` if the bot made it with ``key`` and finished setting it up."""
        server = self.user_id.split(":", 1)[1]
        room_id = await self.resolve_alias(f"#{alias}:{server}")
        if room_id is None:
            return None
        create = await read_create_event(self.client, room_id)
        if create is None or create.get("sender") != self.user_id:
            return None
        try:
            marker = await self.get_state(room_id, ROOM_KEY_EVENT)
        except MatrixError:  # not a member there
            return None
        return room_id if (marker or {}).get("key") == key else None

    async def invite(self, room_id: str, user_id: str) -> None:
        _check(await self.client.room_invite(room_id, user_id), f"inviting {user_id}")

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        _check(await self.client.room_kick(room_id, user_id, reason), f"removing {user_id}")

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        _check(
            await self.client.room_put_state(room_id, event_type, content, state_key),
            f"setting {event_type} in {room_id}",
        )

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        response = await self.client.room_get_state_event(room_id, event_type, state_key)
        if isinstance(response, RoomGetStateEventError):
            if response.status_code == "M_NOT_FOUND":
                return None
            raise MatrixError(f"reading {event_type}: {response.message}", response.status_code)
        return response.content

    async def joined_members(self, room_id: str) -> list[str]:
        response = await self.client.joined_members(room_id)
        if isinstance(response, JoinedMembersError):
            raise MatrixError(f"members of {room_id}: {response.message}", response.status_code)
        return [m.user_id for m in response.members]

    async def user_exists(self, user_id: str) -> bool:
        response = await self.client.get_profile(user_id)
        if isinstance(response, ProfileGetError):
            if response.status_code in ("M_NOT_FOUND", "M_UNKNOWN", "M_FORBIDDEN"):
                return False
            raise MatrixError(f"profile of {user_id}: {response.message}", response.status_code)
        return True

    async def resolve_alias(self, alias: str) -> str | None:
        response = await self.client.room_resolve_alias(alias)
        if isinstance(response, RoomResolveAliasError):
            return None
        return response.room_id

    async def react(self, room_id: str, event_id: str, emoji: str, *, key: str) -> str | None:
        return await self.sender.react(room_id, event_id, emoji, key)

    async def upload(
        self,
        room_id: str,
        *,
        filename: str,
        data: bytes,
        mimetype: str,
        key: str,
        reply_to: Request | None = None,
    ) -> str | None:
        return await self.sender.upload(
            room_id, filename=filename, data=data, mimetype=mimetype, key=key, reply_to=reply_to
        )

    async def edit(self, event_id: str, reply: Reply) -> str | None:
        return await self.sender.edit(event_id, reply)

    async def redact(
        self, room_id: str, event_id: str, *, key: str, reason: str | None = None, paced: bool = False
    ) -> str | None:
        return await self.sender.redact(room_id, event_id, key, reason, paced)

    async def pin(self, room_id: str, event_id: str, pinned: bool = True) -> None:
        """Read the room's pinned events and write them back with ``event_id`` added or taken
        off (a paced state event; nothing is written when it is so already)."""
        current = await self.get_state(room_id, PINNED) or {}
        events = [e for e in current.get("pinned", []) if isinstance(e, str)]
        wanted = [*events, event_id] if pinned and event_id not in events else events
        if not pinned:
            wanted = [e for e in events if e != event_id]
        if wanted == events:
            return
        await self.sender.pace.turn()
        await self.put_state(room_id, PINNED, {"pinned": wanted})
        self.sender.pace.succeeded(True)

    async def direct_chats(self, user_ids: list[str]) -> dict[str, str]:
        """Rooms the bot is joined to where exactly one other person is joined, one of
        ``user_ids``. Every room's member list is asked for (a few at a time): the homeserver is
        the only complete record after a restart."""
        wanted = set(user_ids)
        if not wanted:
            return {}
        response = await self.client.joined_rooms()
        if isinstance(response, ErrorResponse):
            raise MatrixError(f"joined rooms: {response.message}", response.status_code)
        found: dict[str, str] = {}
        slots = asyncio.Semaphore(MEMBER_LOOKUPS)

        async def look(room_id: str) -> None:
            async with slots:
                try:
                    members = set(await self.joined_members(room_id))
                except MatrixError:
                    return
            others = members - {self.user_id}
            if self.user_id in members and len(others) == 1:
                (other,) = others
                if other in wanted:
                    found.setdefault(other, room_id)

        await asyncio.gather(*(look(room_id) for room_id in response.rooms))
        return found

    async def create_direct_chat(self, user_id: str, *, key: str, encrypted: bool) -> str:
        """A private room with ``user_id`` invited as to a direct chat (``is_direct`` on the
        invitation, so the person's client lists it with the direct chats); idempotent by key."""
        state: list[dict[str, Any]] = []
        if encrypted:
            state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        alias = room_key_alias(self.user_id, key)
        state += [
            {"type": "m.room.canonical_alias", "state_key": "", "content": {}},
            {"type": ROOM_KEY_EVENT, "state_key": "", "content": {"key": key}},
        ]
        response = await self.client.room_create(
            alias=alias,
            invite=[user_id],
            is_direct=True,
            initial_state=state,
            preset=RoomPreset.trusted_private_chat,
        )
        if isinstance(response, RoomCreateError) and response.status_code == "M_ROOM_IN_USE":
            existing = await self._made_with_key(alias, key)
            if existing is not None:
                return existing
            response = await self.client.room_create(
                invite=[user_id], is_direct=True, initial_state=state[:1] if encrypted else [],
                preset=RoomPreset.trusted_private_chat,
            )  # fmt: skip
        if isinstance(response, RoomCreateError):
            raise MatrixError(f"direct chat with {user_id}: {response.message}", response.status_code)
        return response.room_id

    def event_bytes(self, reply: Reply) -> int:
        return event_bytes(self.sender.content(reply))
