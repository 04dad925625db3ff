"""Outgoing messages: Matrix conventions and deterministic transaction IDs.

Every bot message is an ``m.notice`` with HTML ``formatted_body`` and plain ``body``, carries
``m.mentions``, and answers a command with a reply relation (inside the thread when the command
came in one). The transaction ID is derived from what the message answers, so a retry after a
timeout, or a replay of the same sync batch after a crash, cannot post twice: the homeserver
deduplicates on the transaction ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import ClientError
from nio import AsyncClient, MatrixRoom, RoomSendError, UploadError
from nio.exceptions import LocalProtocolError

from commands.context import MatrixError, Reply, Request

if TYPE_CHECKING:
    from bot.rendering import Renderer

log = logging.getLogger(__name__)
SEND_ATTEMPTS = 4


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
        self._counters: dict[str, int] = {}
        self._synced = asyncio.Event()

    async def send(self, reply: Reply, request: Request | None = None) -> str | None:
        if self.renderer is None:
            raise RuntimeError("the renderer is set up before the first batch is handled")
        body, html = self.renderer.render(reply.template, reply.data)
        answering = request if reply.room_id is None else None
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
        content = message_content(body, html, answering, reply.mentions, reply.thread_root)
        return await self.send_content(room_id, content, txn)

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
        encrypt = self.client.olm is not None and room_id in self.client.encrypted_rooms
        response, keys = await self.client.upload(
            lambda *_: io.BytesIO(data), mimetype, filename, encrypt=encrypt, filesize=len(data)
        )
        if isinstance(response, UploadError):
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

    def note_sync(self) -> None:
        """Called by the runtime after every sync: wakes sends waiting for a new room."""
        synced, self._synced = self._synced, asyncio.Event()
        synced.set()

    async def send_content(
        self, room_id: str, content: dict[str, Any], txn: str | None, event_type: str = "m.room.message"
    ) -> str | None:
        await self._room_known(room_id)
        delay = 1.0
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                response = await self.client.room_send(
                    room_id, event_type, content, tx_id=txn, ignore_unverified_devices=True
                )
            except (TimeoutError, OSError, ClientError) as exc:  # after nio's own retries
                error: Exception | str = exc
            except LocalProtocolError as exc:  # nio cannot encrypt for this room (yet)
                raise MatrixError(f"cannot send to {room_id}: {exc}") from exc
            else:
                if not isinstance(response, RoomSendError):
                    return response.event_id
                if response.status_code in ("M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE", "M_BAD_JSON"):
                    raise MatrixError(f"cannot send to {room_id}: {response.message}", response.status_code)
                error = f"{response.status_code}: {response.message}"
            if attempt == SEND_ATTEMPTS:
                raise MatrixError(f"sending to {room_id} failed after {attempt} attempts: {error}")
            log.warning("send to %s failed (%s); retrying with the same transaction ID", room_id, error)
            await self.sleep(delay)
            delay *= 2
        return None
