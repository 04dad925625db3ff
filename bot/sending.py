"""Outgoing messages: Matrix conventions and deterministic transaction IDs.

Every bot message is an ``m.notice`` with HTML ``formatted_body`` and plain ``body``, carries
``m.mentions``, and answers a command with a reply relation (inside the thread when the command
came in one). The transaction ID is derived from what the message answers, so a retry after a
timeout, or a replay of the same sync batch after a crash, cannot post twice: the homeserver
deduplicates on the transaction ID.

Bulk work (broadcasts) is paced (``SendPace``): HTTP 429 on any of the bot's sends slows every
paced send, and successes bring the pace back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import ClientError
from nio import (
    AsyncClient,
    ErrorResponse,
    MatrixRoom,
    RoomGetStateEventError,
    RoomPutStateError,
    RoomRedactError,
    RoomSendError,
    UploadError,
)
from nio.exceptions import LocalProtocolError

from commands.context import MatrixError, Reply, Request, SessionLost

if TYPE_CHECKING:
    from bot.rendering import Renderer

log = logging.getLogger(__name__)
SEND_ATTEMPTS = 4
PERMANENT = ("M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE", "M_BAD_JSON")
RATE_LIMITED = ("M_LIMIT_EXCEEDED", "429")
SESSION_GONE = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")  # the access token is no longer accepted
MAX_EVENT_BYTES = 65_536  # the whole event as canonical JSON (Synapse's MAX_PDU_SIZE, the spec's limit)
# what the homeserver adds around the content: IDs, auth and previous events, hashes, signatures
ENVELOPE_BYTES = 2_048


def event_bytes(content: dict[str, Any], event_type: str = "m.room.message") -> int:
    """The size of an event with ``content`` as the homeserver measures it, counted in its larger
    form: encrypted (nio encrypts ``{"type", "content", "room_id"}`` as ASCII-escaped JSON; Megolm
    pads to 16 bytes and adds about 100 for its header, MAC and signature; the ciphertext is
    unpadded base64 beside about 400 bytes of keys and IDs) or in clear (UTF-8)."""
    clear = len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())
    payload = {"type": event_type, "content": content, "room_id": "!" + "x" * 43}
    plain = len(json.dumps(payload, separators=(",", ":")))
    encrypted = math.ceil((plain + 16 - plain % 16 + 100) * 4 / 3) + 400
    return max(clear, encrypted) + ENVELOPE_BYTES


class SendPace:
    """One pace for the bot's paced sends (broadcasts, their corrections and retractions).

    nio retries a request the homeserver refused with HTTP 429 by itself, after ``retry_after_ms``
    (inside ``room_send``). The sender sees every refusal through a response callback and holds
    all paced sends until one interval after that retry, so a limit slows the whole broadcast,
    not just one room. The interval is learnt: a refusal sets it to at least the time from the
    last success to the moment the homeserver allows the next event (a leaky bucket's drip);
    each paced success shortens it by 5 %, so under a steady limit the sends run at about the
    allowed rate (a refusal now and then costs no slot: the refused request goes at the allowed
    moment). Ten paced successes in a row without a refusal mean the limit has gone (an operator
    lifted it, or other traffic stopped): from then on each success shortens the interval by
    30 %, so the pace is back at full speed (interval 0) within about 25 sends.
    """

    SHRINK = 0.95
    RECOVER = 0.7
    RECOVER_AFTER = 10  # paced successes in a row without a refusal
    GROW = 1.2
    FLOOR = 0.01  # seconds: below this the sends are not paced at all
    CEILING = 60.0

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.clock = clock
        self.sleep = sleep
        self.interval = 0.0
        self.refusals = 0  # 429s seen (for logs and benchmarks)
        self._next = 0.0
        self._held_until = 0.0
        self._last_ok: float | None = None
        self._streak = 0  # paced successes since the last refusal

    async def turn(self) -> None:
        """Wait until a paced send may go."""
        while True:
            now = self.clock()
            if now >= self._next:
                self._next = now + self.interval
                return
            await self.sleep(self._next - now)

    def refused(self, retry_after_ms: int | None) -> None:
        """The homeserver refused a request for its rate limit (any of the bot's sends)."""
        now = self.clock()
        wait = (retry_after_ms or 5000) / 1000  # nio waits 5 s when the server names no time
        self.refusals += 1
        self._streak = 0
        if now >= self._held_until:  # a new refusal, not one more of the same wave
            gap = min(now - self._last_ok, wait + self.interval + 1) if self._last_ok is not None else 0.0
            self.interval = min(self.CEILING, max(wait + gap, self.interval * self.GROW))
            log.info("rate limited by the homeserver: paced sends now %.2f s apart", self.interval)
        self._held_until = max(self._held_until, now + wait)
        self._next = max(self._next, now + wait + self.interval)

    def succeeded(self, paced: bool) -> None:
        self._last_ok = self.clock()
        if paced and self.interval:
            self._streak += 1
            self.interval *= self.SHRINK if self._streak < self.RECOVER_AFTER else self.RECOVER
            if self.interval < self.FLOOR:
                self.interval = 0.0
                log.info("paced sends at full speed again")


def edit_content(content: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An edit (``m.replace``) of ``event_id`` to ``content``: clients show the new content in
    place; the fallback for clients without edits is the text marked with "* "."""
    new = {k: v for k, v in content.items() if k != "m.relates_to"}
    fallback = {**new, "m.mentions": {}}
    fallback["body"] = f"* {new.get('body', '')}"
    if "formatted_body" in new:
        fallback["formatted_body"] = f"* {new['formatted_body']}"
    return {**fallback, "m.new_content": new, "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}


def session_gone(response: ErrorResponse) -> bool:
    """Whether the homeserver refused the request because the bot's session is gone."""
    return response.status_code in SESSION_GONE or bool(response.soft_logout)


def transaction_id(*parts: str) -> str:
    """A stable transaction ID from the parts that identify one logical message."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"ksb{digest}"


def message_content(
    body: str, html: str, request: Request | None, mentions: list[str], thread_root: str | None = None
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.notice",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
    }
    user_ids = list(dict.fromkeys(mentions))
    if request is not None and request.event_id:
        if request.sender not in user_ids:
            user_ids.insert(0, request.sender)
        if request.thread_root:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": request.thread_root,
                "is_falling_back": False,
                "m.in_reply_to": {"event_id": request.event_id},
            }
        else:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": request.event_id}}
    elif thread_root:
        # a fresh message in a thread (a reminder under a check-in); clients without threads
        # show it as a reply to the thread's root
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": thread_root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": thread_root},
        }
    content["m.mentions"] = {"user_ids": user_ids} if user_ids else {}
    return content


class MessageSender:
    """Renders replies and sends them with bounded retries and stable transaction IDs."""

    def __init__(
        self,
        client: AsyncClient,
        renderer: Renderer | None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.client = client
        self.renderer = renderer
        self.sleep = sleep  # the wait between attempts; tests shorten it
        self.joined: Callable[[str], bool] = lambda room_id: False  # rooms the bot is known to be in
        # Whether nio can know that a room is encrypted: not during a first start, for a room
        # the first sync (running behind the live syncs) has not shown yet (``bot.sync_loop``)
        self.encryption_known: Callable[[str], bool] = lambda room_id: True
        self._encryption_asked: set[str] = set()
        self._counters: dict[str, int] = {}
        self._synced = asyncio.Event()
        self._invites_checked: set[str] = set()
        self.pace = SendPace()
        client.add_response_callback(self._on_refused, (RoomSendError, RoomRedactError, RoomPutStateError))

    async def _on_refused(self, response: ErrorResponse) -> None:
        """nio reports each 429 it is about to retry: every paced send slows down."""
        if response.status_code in RATE_LIMITED:
            self.pace.refused(response.retry_after_ms)

    def content(self, reply: Reply, request: Request | None = None) -> dict[str, Any]:
        """The event content ``reply`` becomes (rendered, with relation and mentions)."""
        if self.renderer is None:
            raise RuntimeError("the renderer is set up before the first batch is handled")
        body, html = self.renderer.render(reply.template, reply.data)
        answering = request if reply.room_id is None else None
        return message_content(body, html, answering, reply.mentions, reply.thread_root)

    async def send(self, reply: Reply, request: Request | None = None) -> str | None:
        content = self.content(reply, request)
        room_id = reply.room_id or (request.room_id if request else None)
        if room_id is None:
            raise ValueError("a reply needs a room or a request")
        if reply.key:
            txn = transaction_id("key", reply.key)
        elif request is not None and request.event_id:
            # the n-th message sent while handling this event: stable across replays
            index = self._counters.get(request.event_id, 0)
            self._counters[request.event_id] = index + 1
            txn = transaction_id("event", request.event_id, str(index))
        else:
            txn = None
        return await self.send_content(room_id, content, txn, paced=reply.paced)

    async def edit(self, event_id: str, reply: Reply) -> str | None:
        """Replace the bot's message ``event_id`` with ``reply`` (``m.replace``)."""
        if reply.room_id is None:
            raise ValueError("an edit names its room")
        content = edit_content(self.content(reply), event_id)
        txn = transaction_id("key", reply.key) if reply.key else None
        return await self.send_content(reply.room_id, content, txn, paced=reply.paced)

    async def redact(
        self, room_id: str, event_id: str, key: str, reason: str | None = None, paced: bool = False
    ) -> str | None:
        """Redact ``event_id``; the transaction ID from ``key`` makes a retry redact once."""

        async def request() -> Any:
            return await self.client.room_redact(room_id, event_id, reason, tx_id=transaction_id("key", key))

        return await self._attempts(room_id, request, paced)

    async def react(self, room_id: str, event_id: str, emoji: str, key: str) -> str | None:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": emoji}}
        return await self.send_content(room_id, content, transaction_id("key", key), "m.reaction")

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
        """Upload a file and post it (``m.file``), encrypted where the room is encrypted. A retry
        with the same ``key`` may upload again but posts once."""
        await self._learn_encryption(room_id)
        encrypt = self.client.olm is not None and room_id in self.client.encrypted_rooms
        response, keys = await self.client.upload(
            lambda *_: io.BytesIO(data), mimetype, filename, encrypt=encrypt, filesize=len(data)
        )
        if isinstance(response, UploadError):
            if session_gone(response):
                raise SessionLost(f"uploading {filename}: {response.message}", response.status_code)
            raise MatrixError(f"uploading {filename}: {response.message}", response.status_code)
        content: dict[str, Any] = {
            "msgtype": "m.file",
            "body": filename,
            "filename": filename,
            "info": {"mimetype": mimetype, "size": len(data)},
        }
        if keys is not None:
            content["file"] = {**keys, "url": response.content_uri}
        else:
            content["url"] = response.content_uri
        if reply_to is not None and reply_to.event_id:
            relation = message_content("", "", reply_to, [])
            content["m.relates_to"] = relation["m.relates_to"]
            content["m.mentions"] = relation["m.mentions"]
        return await self.send_content(room_id, content, transaction_id("key", key))

    def forget(self, event_id: str) -> None:
        self._counters.pop(event_id, None)

    async def _room_known(self, room_id: str, timeout: float = 15.0) -> None:
        """With encryption, nio must know the room (members, algorithm) before it can encrypt.
        A room the bot is in but that no sync of this process has mentioned is set up from nio's
        stored list of encrypted rooms (nio fetches the members itself). A room the bot created
        moments ago becomes known with the next sync, which runs while handlers work."""
        if self.client.olm is not None and room_id not in self.client.rooms and self.joined(room_id):
            self.client.rooms[room_id] = MatrixRoom(
                room_id, self.client.user_id, room_id in self.client.encrypted_rooms
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.client.olm is not None and room_id not in self.client.rooms:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return  # nio will say what is wrong
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), remaining)

    async def _learn_encryption(self, room_id: str) -> None:
        """During a first start nio may not know yet whether a room is encrypted (a new device's
        store is empty, and the live syncs carry no unchanged state): before the first post
        there, the room's encryption event is asked for, once. A message is never sent in the
        clear to a room that may be encrypted: if the answer does not come, the post fails
        (and its batch is replayed)."""
        if self.client.olm is None or self.encryption_known(room_id) or room_id in self._encryption_asked:
            return
        try:
            response = await self.client.room_get_state_event(room_id, "m.room.encryption")
        except (TimeoutError, OSError, ClientError) as exc:
            raise MatrixError(f"cannot tell whether {room_id} is encrypted: {exc!r}") from exc
        if isinstance(response, RoomGetStateEventError):
            if response.status_code != "M_NOT_FOUND":
                if session_gone(response):
                    message = f"asking {room_id}'s encryption: {response.message}"
                    raise SessionLost(message, response.status_code)
                raise MatrixError(f"cannot tell whether {room_id} is encrypted: {response.message}")
        elif response.content.get("algorithm"):
            self.client.encrypted_rooms.add(room_id)
            self.client.store.save_encrypted_rooms([room_id])
            room = self.client.rooms.get(room_id)
            if room is not None:
                room.encrypted = True
        self._encryption_asked.add(room_id)

    async def _invited_known(self, room_id: str) -> None:
        """nio learns the members of a room it has not synced from ``/joined_members``, which
        leaves out people who are invited and have not accepted yet: a message encrypted now
        would never be readable for them (a mayor's new direct chat, a tandem room before its
        partners join). Before the first encrypted send to such a room its invited members are
        added, so the room key is shared with their devices too (once per room and process)."""
        room = self.client.rooms.get(room_id)
        if room is None or not room.encrypted or room.members_synced or room_id in self._invites_checked:
            return
        self._invites_checked.add(room_id)
        try:
            response = await self.client.send(
                "GET",
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/members?membership=invite",
                headers={"Authorization": f"Bearer {self.client.access_token}"},
            )
            body = await response.json()
        except Exception:  # nio still encrypts for the joined members
            log.debug("invited members of %s unknown", room_id, exc_info=True)
            return
        for event in body.get("chunk", []) if isinstance(body, dict) else []:
            user_id = event.get("state_key") if isinstance(event, dict) else None
            if isinstance(user_id, str) and user_id not in room.users:
                name = (event.get("content") or {}).get("displayname")
                room.add_member(user_id, name if isinstance(name, str) else None, None, invited=True)

    def note_sync(self) -> None:
        """Called by the runtime after every sync: wakes sends waiting for a new room."""
        synced, self._synced = self._synced, asyncio.Event()
        synced.set()

    async def send_content(
        self,
        room_id: str,
        content: dict[str, Any],
        txn: str | None,
        event_type: str = "m.room.message",
        *,
        paced: bool = False,
    ) -> str | None:
        await self._room_known(room_id)
        if self.client.olm is not None:
            await self._learn_encryption(room_id)
            await self._invited_known(room_id)

        async def request() -> Any:
            return await self.client.room_send(
                room_id, event_type, content, tx_id=txn, ignore_unverified_devices=True
            )

        return await self._attempts(room_id, request, paced)

    async def _attempts(self, room_id: str, request: Callable[[], Awaitable[Any]], paced: bool) -> str | None:
        """Up to ``SEND_ATTEMPTS`` tries of a request that posts an event (with the same
        transaction ID); paced requests wait for their turn before each try."""
        delay = 1.0
        errcode: str | None = None
        for attempt in range(1, SEND_ATTEMPTS + 1):
            if paced:
                await self.pace.turn()
            try:
                response = await request()
            except (TimeoutError, OSError, ClientError) as exc:  # after nio's own retries
                error: Exception | str = exc
                errcode = None
            except LocalProtocolError as exc:  # nio cannot encrypt for this room (yet)
                raise MatrixError(f"cannot send to {room_id}: {exc}") from exc
            else:
                if not isinstance(response, ErrorResponse):
                    self.pace.succeeded(paced)
                    return response.event_id
                if session_gone(response):  # the same token fails again: no retries
                    raise SessionLost(f"cannot send to {room_id}: {response.message}", response.status_code)
                if response.status_code in PERMANENT:
                    raise MatrixError(f"cannot send to {room_id}: {response.message}", response.status_code)
                if response.status_code in RATE_LIMITED:  # nio gave up retrying it
                    self.pace.refused(response.retry_after_ms)
                error = f"{response.status_code}: {response.message}"
                errcode = response.status_code
            if attempt == SEND_ATTEMPTS:
                raise MatrixError(f"sending to {room_id} failed after {attempt} attempts: {error}", errcode)
            log.warning("send to %s failed (%s); retrying with the same transaction ID", room_id, error)
            await self.sleep(delay)
            delay *= 2
        return None
