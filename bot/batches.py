"""Sync batches handled beside the sync loop, and the sync token stored only behind them.

Each batch's work runs in a task while syncing goes on. The token of a batch is stored once it
and every batch before it are completely handled, so a crash or kill replays unfinished work and
nothing else (replays answer nothing twice: answered events are recorded and replies carry
transaction IDs derived from the command).

A first start takes the first sync behind the live syncs (``bot.sync_loop``): its place in the
order is held before the first live batch, so no token is stored until the rooms' backlog is
handled too, and a crash before that replays the whole start.

A batch whose work fails is not complete: its token is never stored, and neither is any later
one, since the stored position must not pass unhandled work. The bot goes on answering; a
restart replays from the last stored token, which redoes the failed step (joins, invites and
leaves are idempotent; answered commands are skipped).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field

from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)


class BatchIncomplete(Exception):
    """Raised by a batch's work when a step failed (and was logged): the batch is not complete."""


@dataclass
class Batch:
    token: str | None  # None: a held place (``Batches.hold``), which stores no token of its own
    done: bool = False
    failed: bool = False
    parts: list[asyncio.Task[None]] = field(default_factory=list)  # the held place's work


class Batches:
    def __init__(self, repo: RuntimeStateRepository):
        self.repo = repo
        self.held_at: str | None = None  # the token of the first batch that failed, if any
        self._pending: deque[Batch] = deque()  # in sync order; the head is the oldest unstored
        self._running: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def add(self, token: str, work: Awaitable[None], into: Batch | None = None) -> None:
        """Handle a batch in a task: ``work`` does everything the batch asks for. ``into``: the
        work belongs to a held place (``hold``) and stores no token of its own."""
        if into is not None:
            task = asyncio.ensure_future(self._part(into, work))
            into.parts.append(task)
        else:
            batch = Batch(token)
            if self.held_at is None:
                self._pending.append(batch)
            task = asyncio.ensure_future(self._handle(batch, work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def hold(self) -> Batch:
        """A place in the order for work routed later (the first sync taken behind the live
        syncs): no later token is stored before ``release`` finds all of it handled."""
        held = Batch(None)
        if self.held_at is None:
            self._pending.append(held)
        return held

    async def release(self, held: Batch, complete: bool = True) -> None:
        """The held work is routed, all of it if ``complete`` (not after a stop): once its parts
        are handled, the tokens behind it may be stored. Incomplete, it stays in the way."""
        if held.parts:
            await asyncio.wait(held.parts)
        if complete and not held.failed:
            held.done = True
        await self._store()  # a part that failed holds the token (and says so); a stop leaves it

    async def _part(self, held: Batch, work: Awaitable[None]) -> None:
        """A part of the held work: a failure marks the held place (``release`` stores)."""
        await _run(work, held, "the first sync's backlog")

    async def _handle(self, batch: Batch, work: Awaitable[None]) -> None:
        if await _run(work, batch, f"sync batch {batch.token}"):
            batch.done = True
        try:
            await self._store()
        except Exception:
            log.exception("could not store the sync token; a restart replays more than needed")

    async def _store(self) -> None:
        async with self._lock:
            token = None
            while self._pending and self._pending[0].done:
                token = self._pending.popleft().token or token
            if token is not None:
                await self.repo.save_sync_token(token)
            if self._pending and self._pending[0].failed and self.held_at is None:
                self.held_at = self._pending[0].token or "the first sync"
                self._pending = deque([self._pending[0]])  # nothing after it is ever stored
                log.error(
                    "the sync token stays before batch %s until a restart, which replays it",
                    self.held_at,
                )

    def handled_behind(self, held: Batch) -> str | None:
        """The token of the last batch after the held place when every batch after it is
        handled and none failed (after a clean stop's drain); None otherwise, or if the held
        place is not the oldest unstored batch or one of its parts failed."""
        if self.held_at is not None or held.failed or not self._pending or self._pending[0] is not held:
            return None
        if any(not part.done() for part in held.parts):
            return None
        later = list(self._pending)[1:]
        if not later or any(not batch.done or batch.failed for batch in later):
            return None
        return later[-1].token

    async def resume(self) -> str | None:
        """Start over from the stored token (after a new login replaces a lost session): the
        batches handed in so far are forgotten (none of them stores its token any more; the
        replay from the returned token redoes them) and a failed one no longer holds the token."""
        async with self._lock:
            self._pending.clear()
            self.held_at = None
            return await self.repo.sync_token()

    @property
    def running(self) -> list[asyncio.Task[None]]:
        return [task for task in self._running if not task.done()]

    async def drain(self, timeout: float) -> None:
        """Let running batches finish (their tokens are then stored)."""
        if self.running:
            await asyncio.wait(self.running, timeout=timeout)


async def _run(work: Awaitable[None], batch: Batch, what: str) -> bool:
    """Run a batch's work; a failure is logged and marks ``batch`` failed (returns False)."""
    try:
        await work
    except BatchIncomplete as exc:
        log.error("%s could not be handled completely: %s", what, exc)
    except Exception:
        log.exception("%s could not be handled completely", what)
    else:
        return True
    batch.failed = True
    return False
