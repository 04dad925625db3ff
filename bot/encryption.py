"""End-to-end encryption upkeep: the bot's keys, and telling a room when a message stays locked.

Key policy (README): trust on first use; keys are shared with every device of a room's members.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiohttp import ClientError
from nio import AsyncClient, MegolmEvent
from nio.exceptions import LocalProtocolError
from nio.store import DefaultStore

from commands.context import Clock, MatrixPort, Reply, Request
from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)


class CryptoStore(DefaultStore):
    """nio's store (SQLite through peewee), minus one write per sync: after every sync response
    nio saves the encrypted rooms it found in it, opening a transaction on the event loop even
    when there are none, as in nearly every sync. That cost about 1 ms of CPU per sync (more on a
    busy machine), on the way from a command to its answer."""

    def save_encrypted_rooms(self, rooms: Any) -> None:
        if rooms:
            super().save_encrypted_rooms(rooms)


async def keep_keys(client: AsyncClient) -> None:
    """What nio's ``sync_forever`` does between syncs: send queued to-device messages, upload
    one-time keys when they run low, ask for the keys of new devices, claim keys for new Olm
    sessions. A failure is retried after the next sync."""
    if client.olm is None:
        return
    try:
        await client.send_to_device_messages()
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
    except (TimeoutError, OSError, ClientError, LocalProtocolError) as exc:
        log.warning("encryption key upkeep failed, will retry: %s", exc)


class UndecryptableNotices:
    """A message the bot cannot decrypt gets one notice per room (what the user can do) and a
    key request; once a message there decrypts again, a later failure is worth a notice again."""

    def __init__(self, client: AsyncClient, repo: RuntimeStateRepository, matrix: MatrixPort, clock: Clock):
        self.client = client
        self.repo = repo
        self.matrix = matrix
        self.clock = clock
        self._noticed: set[str] = set()

    async def load(self) -> None:
        self._noticed = await self.repo.undecryptable_noticed_rooms()

    async def report(self, room_id: str, event: MegolmEvent) -> None:
        log.warning("cannot decrypt %s in %s (session %s)", event.event_id, room_id, event.session_id)
        with contextlib.suppress(Exception):
            await self.client.request_room_key(event)
        now_ms = int(self.clock.now().timestamp() * 1000)
        if not await self.repo.claim_undecryptable_notice(room_id, now_ms):
            return
        self._noticed.add(room_id)
        request = Request(
            sender=event.sender,
            room_id=room_id,
            body="",
            event_id=event.event_id,
            timestamp_ms=event.server_timestamp,
        )
        try:
            await self.matrix.send(Reply("undecryptable"), request)
        except Exception:
            log.exception("could not tell %s about an undecryptable message", room_id)

    async def decrypted(self, room_id: str) -> None:
        """A message in ``room_id`` was decrypted: forget the notice (a write only where one was
        given, not for every encrypted command)."""
        if room_id in self._noticed:
            self._noticed.discard(room_id)
            await self.repo.clear_undecryptable_notice(room_id)
