"""What a handler gets: the request, the sender's role, a way to reply, and the services.

Nothing here knows nio. The Matrix runtime (``bot/``), the terminal console and the tests each
provide a ``MatrixPort`` and a ``send`` callable; the handlers stay the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from commands.registry import Command
    from commands.scheduling import Scheduling
    from config.settings import Settings
    from storage.database import Database


class Role(IntEnum):
    MEMBER = 0
    COORDINATOR = 1

    @property
    def label(self) -> str:
        return self.name.lower()


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps backwards."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class Request:
    """A message addressed to the bot, as any transport sees it."""

    sender: str
    room_id: str
    body: str
    event_id: str | None = None
    thread_root: str | None = None
    timestamp_ms: int = 0
    is_direct: bool = False
    mentions_bot: bool = False
    reply_to: str | None = None  # the event this message replies to (m.in_reply_to)
    replaces: str | None = None  # an edit (m.replace): the event it corrects; body is the new text


@dataclass(frozen=True)
class Reaction:
    """An annotation (m.reaction) someone put on an event."""

    sender: str
    room_id: str
    event_id: str
    target_event_id: str
    key: str
    timestamp_ms: int = 0


@dataclass(frozen=True)
class Redaction:
    """Someone redacted an event (e.g. took a reaction back)."""

    sender: str
    room_id: str
    event_id: str
    redacts: str
    timestamp_ms: int = 0


@dataclass
class Reply:
    """A message to send: a template name and its data; ``bot/`` renders and sends it.

    ``room_id`` None means "answer the request" (same room, reply relation, same thread);
    a room ID sends a fresh message there (announcements, welcomes).
    """

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    mentions: list[str] = field(default_factory=list)
    room_id: str | None = None
    key: str | None = None  # stable part of the transaction ID for messages not tied to a request
    thread_root: str | None = None  # a fresh message in this thread (reminders under a check-in)
    paced: bool = False  # bulk work (broadcasts): waits for the sender's pace, which 429s slow


class MatrixError(Exception):
    """A Matrix operation failed; ``errcode`` as the homeserver gave it (M_FORBIDDEN, …)."""

    def __init__(self, message: str, errcode: str | None = None):
        super().__init__(message)
        self.errcode = errcode


class SessionLost(Exception):
    """The homeserver no longer accepts the bot's access token (``M_UNKNOWN_TOKEN``,
    ``M_MISSING_TOKEN``, a soft logout): not the room's problem and not worth retrying with the
    same token. Nothing catches it as a failed command or delivery: the work stays undone (not
    recorded as answered, sent or failed) and is done again once the bot has logged in again
    (the sync loop replays from the last completed batch; scheduled work and broadcasts retry).
    Not a ``MatrixError``: code that handles a room's refusal (not a member, no power) must not
    take a lost session for one and carry on without the work done."""

    def __init__(self, message: str, errcode: str | None = None):
        super().__init__(message)
        self.errcode = errcode


class MatrixPort(Protocol):
    """Side effects on the homeserver other than answering; implemented in ``bot/``."""

    @property
    def user_id(self) -> str: ...

    async def send(self, reply: Reply, request: Request | None = None) -> str | None:
        """Render and send ``reply``; returns the event ID where there is one."""

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
        """Create a room and return its ID. With ``txn_key``, creating again with the same key
        returns the room made the first time instead of a second one (a retry after a lost
        answer or a crash); the key must name one room for good, not be reused for another."""

    async def invite(self, room_id: str, user_id: str) -> None: ...

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None: ...

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None: ...

    async def get_state(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None: ...

    async def joined_members(self, room_id: str) -> list[str]: ...

    async def user_exists(self, user_id: str) -> bool: ...

    async def resolve_alias(self, alias: str) -> str | None: ...

    async def react(self, room_id: str, event_id: str, emoji: str, *, key: str) -> str | None:
        """Annotate ``event_id`` with ``emoji`` (m.reaction); ``key`` makes it exactly once."""

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
        """Upload ``data`` and post it as a file (encrypted where the room is)."""

    async def edit(self, event_id: str, reply: Reply) -> str | None:
        """Replace the text of the bot's message ``event_id`` in ``reply.room_id`` with ``reply``
        (``m.replace``: clients show the new text in place); ``reply.key`` makes it exactly once."""

    async def redact(
        self, room_id: str, event_id: str, *, key: str, reason: str | None = None, paced: bool = False
    ) -> str | None:
        """Redact ``event_id``; ``key`` makes it exactly once."""

    async def pin(self, room_id: str, event_id: str, pinned: bool = True) -> None:
        """Add ``event_id`` to the room's pinned events (or take it off); raises MatrixError
        (M_FORBIDDEN) where the bot may not."""

    async def direct_chats(self, user_ids: list[str]) -> dict[str, str]:
        """The bot's existing direct chats (the bot and one person, both joined) with any of
        ``user_ids``, by user."""

    async def create_direct_chat(self, user_id: str, *, key: str, encrypted: bool) -> str:
        """A new direct chat with ``user_id`` (invited, flagged as direct); the same ``key`` makes
        the same room, as ``create_room``'s ``txn_key``."""

    def event_bytes(self, reply: Reply) -> int:
        """The size ``reply`` has as an event, in bytes of JSON, where the homeserver measures
        it (at most 65,536), counted as if encrypted: the larger form."""


@dataclass
class Services:
    """Long-lived things handlers use. ``cache`` holds per-family state built once (indexes)."""

    settings: Settings
    db: Database
    matrix: MatrixPort
    clock: Clock = field(default_factory=SystemClock)
    started_at: float = field(default_factory=time.monotonic)
    cache: dict[str, Any] = field(default_factory=dict)
    schedules: Scheduling | None = None  # scheduled work, where the transport runs it

    _building: dict[str, asyncio.Task] = field(default_factory=dict)

    async def cached(self, key: str, build: Callable[[], Awaitable[Any]]) -> Any:
        """``cache[key]``, built on first use. Handlers run concurrently, so callers that ask
        while it is being built wait for that one build instead of starting another."""
        if key in self.cache:
            return self.cache[key]
        task = self._building.get(key)
        if task is None:
            task = self._building[key] = asyncio.ensure_future(build())
            task.add_done_callback(lambda done: self._built(key, done))
        return await asyncio.shield(task)

    def _built(self, key: str, task: asyncio.Task) -> None:
        self._building.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self.cache[key] = task.result()


@dataclass
class Context:
    """Handed to every handler."""

    request: Request
    role: Role
    locale: str
    services: Services
    command: Command | None
    _send: Callable[[Reply], Awaitable[str | None]]
    sent: list[Reply] = field(default_factory=list)
    typed: tuple[str, ...] = ()  # the command's words as the sender typed them: ("eligible",)

    @property
    def sender(self) -> str:
        return self.request.sender

    @property
    def room_id(self) -> str:
        return self.request.room_id

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def prefix(self) -> str:
        return self.services.settings.command_prefix

    def invocation(self, cmd: Command | None = None) -> str:
        """``cmd`` (default: the command being answered) as answers show it, in usage lines and
        examples: as the sender typed it (``!eligible`` on a German bot), else in the locale."""
        target = cmd or self.command
        if target is None:
            raise ValueError("no command to name")
        return target.invocation(self.prefix, self.locale, self.typed)

    async def reply(self, template: str, *, mentions: list[str] | None = None, **data: Any) -> str | None:
        """Answer the request with a template and its data."""
        return await self.emit(Reply(template, data, mentions=list(mentions or [])))

    async def emit(self, reply: Reply) -> str | None:
        self.sent.append(reply)
        return await self._send(reply)
