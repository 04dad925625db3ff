"""An in-memory stand-in for the homeserver, used by the terminal console and fast unit tests.

It implements the same ``MatrixPort`` as the real runtime: rooms, state, members, invites and
sent messages live in dictionaries, so handlers run unchanged without a homeserver.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.rendering import Renderer
from bot.sending import event_bytes, message_content
from commands.context import MatrixError, Reply, Request


@dataclass
class LocalRoom:
    room_id: str
    name: str
    topic: str | None = None
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    invited: set[str] = field(default_factory=set)
    encrypted: bool = False
    space: bool = False


@dataclass
class SentMessage:
    room_id: str
    body: str
    html: str
    reply: Reply
    in_reply_to: str | None
    event_id: str = ""
    replaces: str | None = None  # an edit (m.replace) of this event


class LocalMatrix:
    """MatrixPort without a homeserver. ``on_send`` sees every rendered message."""

    def __init__(
        self,
        user_id: str,
        renderer: Renderer,
        server_name: str = "localhost",
        on_send: Callable[[SentMessage], None] | None = None,
        known_users: set[str] | None = None,
    ):
        self._user_id = user_id
        self.renderer = renderer
        self.server_name = server_name
        self.on_send = on_send
        self.rooms: dict[str, LocalRoom] = {}
        self.sent: list[SentMessage] = []
        self.aliases: dict[str, str] = {}
        self.known_users = known_users  # None: every well-formed ID exists
        self.reactions: list[tuple[str, str, str]] = []  # (room, event, emoji)
        self.files: list[tuple[str, str, bytes]] = []  # (room, filename, data)
        self._by_key: dict[str, str] = {}  # like a homeserver's transaction IDs: a key posts once
        self._ids = itertools.count(1)
        self._rooms_by_key: dict[str, str] = {}  # txn_key -> room: a key creates one room
        self.redactions: list[tuple[str, str]] = []  # (room, event)
        # sends into these rooms fail with this errcode (a room the bot left, one it may not post in)
        self.refuse: dict[str, str] = {}

    @property
    def user_id(self) -> str:
        return self._user_id

    async def send(self, reply: Reply, request: Request | None = None) -> str | None:
        return await self._post(reply, request, None)

    async def _post(self, reply: Reply, request: Request | None, replaces: str | None) -> str | None:
        if reply.key is not None and reply.key in self._by_key:
            return self._by_key[reply.key]
        room_id = reply.room_id or (request.room_id if request else "")
        if room_id in self.refuse:
            raise MatrixError(f"cannot send to {room_id}", self.refuse[room_id])
        body, markup = self.renderer.render(reply.template, reply.data)
        event_id = f"$local{next(self._ids)}"
        message = SentMessage(
            room_id,
            body,
            markup,
            reply,
            request.event_id if request and reply.room_id is None else None,
            event_id,
            replaces,
        )
        self.sent.append(message)
        if self.on_send:
            self.on_send(message)
        if reply.key is not None:
            self._by_key[reply.key] = event_id
        return event_id

    async def edit(self, event_id: str, reply: Reply) -> str | None:
        return await self._post(reply, None, event_id)

    async def redact(
        self, room_id: str, event_id: str, *, key: str, reason: str | None = None, paced: bool = False
    ) -> str | None:
        if key not in self._by_key:
            if room_id in self.refuse:
                raise MatrixError(f"cannot redact in {room_id}", self.refuse[room_id])
            self.redactions.append((room_id, event_id))
            self._by_key[key] = f"$local{next(self._ids)}"
        return self._by_key[key]

    async def pin(self, room_id: str, event_id: str, pinned: bool = True) -> None:
        room = self._room(room_id)
        if room_id in self.refuse:
            raise MatrixError(f"cannot pin in {room_id}", self.refuse[room_id])
        events = list(room.state.get(("m.room.pinned_events", ""), {}).get("pinned", []))
        if pinned and event_id not in events:
            events.append(event_id)
        elif not pinned:
            events = [e for e in events if e != event_id]
        room.state[("m.room.pinned_events", "")] = {"pinned": events}

    async def direct_chats(self, user_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for room in self.rooms.values():
            others = room.members - {self.user_id}
            if self.user_id in room.members and len(others) == 1 and not room.space:
                (other,) = others
                if other in user_ids:
                    found.setdefault(other, room.room_id)
        return found

    async def create_direct_chat(self, user_id: str, *, key: str, encrypted: bool) -> str:
        return await self.create_room(name="", invite=[user_id], encrypted=encrypted, txn_key=key)

    def event_bytes(self, reply: Reply) -> int:
        body, html = self.renderer.render(reply.template, reply.data)
        return event_bytes(message_content(body, html, None, reply.mentions))

    async def react(self, room_id: str, event_id: str, emoji: str, *, key: str) -> str | None:
        if key not in self._by_key:
            self.reactions.append((room_id, event_id, emoji))
            self._by_key[key] = f"$local{next(self._ids)}"
        return self._by_key[key]

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
        if key not in self._by_key:
            self.files.append((room_id, filename, data))
            self._by_key[key] = f"$local{next(self._ids)}"
        return self._by_key[key]

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
    ) -> str:
        if txn_key is not None and txn_key in self._rooms_by_key:
            return self._rooms_by_key[txn_key]
        room_id = f"!local{next(self._ids)}:{self.server_name}"
        room = LocalRoom(room_id, name, topic, encrypted=encrypted, space=space)
        room.members.add(self.user_id)
        room.invited.update(invite or [])
        if power_levels:
            room.state[("m.room.power_levels", "")] = power_levels
        for event in initial_state or []:
            room.state[(event["type"], event.get("state_key", ""))] = event["content"]
        self.rooms[room_id] = room
        if txn_key is not None:
            self._rooms_by_key[txn_key] = room_id
        return room_id

    def _room(self, room_id: str) -> LocalRoom:
        if room_id not in self.rooms:
            raise MatrixError(f"unknown room {room_id}", "M_NOT_FOUND")
        return self.rooms[room_id]

    async def invite(self, room_id: str, user_id: str) -> None:
        room = self._room(room_id)
        if user_id not in room.members:
            room.invited.add(user_id)

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        room = self._room(room_id)
        room.members.discard(user_id)
        room.invited.discard(user_id)

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        self._room(room_id).state[(event_type, state_key)] = content

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        room = self._room(room_id)
        if event_type == "m.room.member" and (event_type, state_key) not in room.state:
            if state_key in room.members:
                return {"membership": "join"}
            return {"membership": "invite"} if state_key in room.invited else None
        return room.state.get((event_type, state_key))

    def leave(self, room_id: str, user_id: str) -> None:
        """Someone leaves a room (what a client would do)."""
        room = self._room(room_id)
        room.members.discard(user_id)
        room.invited.discard(user_id)
        room.state[("m.room.member", user_id)] = {"membership": "leave"}

    async def joined_members(self, room_id: str) -> list[str]:
        return sorted(self._room(room_id).members)

    async def user_exists(self, user_id: str) -> bool:
        return self.known_users is None or user_id in self.known_users

    async def resolve_alias(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    def join(self, room_id: str, user_id: str) -> None:
        """Accept an invite (what a client would do)."""
        room = self._room(room_id)
        room.invited.discard(user_id)
        room.members.add(user_id)
