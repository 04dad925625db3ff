"""Delivery of broadcasts: passes over the outbox until every room shows what it should.

What a room should show follows from the broadcast: nothing once it is retracted, else the
current version of its text. A pass takes the rows that differ (pending: send; sent with an older
version: edit; sent and retracted: redact) and works them with bounded concurrency
(``broadcasts.concurrency``). Every request is paced by the sender (``bot.sending.SendPace``:
HTTP 429 slows the whole broadcast and the pace recovers afterwards) and carries a transaction
ID derived from its row (``broadcast-<id>-<row>``, with ``-v<version>`` for an edit and
``-redact`` for a redaction), so a retry after a timeout, or the pass resumed after a crash
(``resume_unfinished`` at start), cannot post, edit or redact twice: the homeserver answers a
repeated transaction ID with the first event (Synapse keeps them for a day).

The coordinator sees one progress message per pass in the room where the broadcast was
composed, edited in place (``m.replace``) whenever another tenth of the rooms is done or ten
seconds have passed, and a final report with delivered, skipped and failed rooms, each failure
with its reason in plain words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from commands.context import MatrixError, Reply, Services, SessionLost
from commands.moments import epoch_now
from storage.broadcasts import Broadcast, BroadcastRepository, Delivery

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 10.0
PROGRESS_EVERY_SHARE = 0.1
TRANSIENT_ROUNDS = 3  # a row that fails for a passing reason (no answer, rate limit) is tried this often
ROUND_PAUSE = 5.0
REPORT_FAILURES = 50  # failures listed in a report; status shows every one
CACHE_KEY = "broadcast_deliveries"
# seconds before a pass that stopped because the bot's session was lost starts again (doubling
# up to SESSION_PAUSE_MAX): the bot logs in again meanwhile; the rows it could not send stay pending
SESSION_PAUSE = 5.0
SESSION_PAUSE_MAX = 300.0


def reason_of(exc: MatrixError) -> tuple[str, bool]:
    """The plain reason of a failed request as a template key, and whether it may pass."""
    message = str(exc).lower()
    if exc.errcode == "M_FORBIDDEN":
        if "not in room" in message or "not in the room" in message or "not joined" in message:
            return "not_in_room", False
        return "forbidden", False
    if exc.errcode == "M_NOT_FOUND" or "unknown room" in message:
        return "room_gone", False
    if exc.errcode == "M_TOO_LARGE":
        return "too_large", False
    if exc.errcode in ("M_LIMIT_EXCEEDED", "429"):
        return "rate_limited", True
    if exc.errcode is None and "cannot send" in message:  # nio cannot encrypt for the room
        return "encryption", False
    return "unreachable", True


def announcement(broadcast: Broadcast) -> dict[str, Any]:
    """The template data of the announcement itself (template ``broadcast``)."""
    return {"text": broadcast.current_text}


@dataclass
class Pass:
    """One pass over the outbox: what it does, how far it got, what failed."""

    broadcast: Broadcast
    total: int
    done: int = 0
    failures: list[tuple[Delivery, str]] = field(default_factory=list)
    reported_at: float = 0.0
    reported_done: int = 0
    shown: int = -1  # the count the progress message shows: never goes back
    progress_id: str | None = None  # this pass's progress message (kept when a new op comes in)
    reporting: asyncio.Lock = field(default_factory=asyncio.Lock)


class Deliveries:
    """The passes running in this process, one task per broadcast (``services.cache``)."""

    def __init__(self, services: Services):
        self.services = services
        self.repo = BroadcastRepository(services.db)
        self.tasks: dict[int, asyncio.Task[None]] = {}
        # raised when a broadcast changes while its pass runs (a retraction): workers read it anew
        self._generation: dict[int, int] = {}
        self.on_progress: Callable[[Pass], Awaitable[None]] | None = None  # tests watch passes

    @property
    def concurrency(self) -> int:
        return self.services.settings.broadcasts.concurrency

    def start(self, broadcast_id: int) -> None:
        """Run the broadcast's passes until its outbox is as it should be (once per process)."""
        running = self.tasks.get(broadcast_id)
        if running is not None and not running.done():
            self._generation[broadcast_id] = self._generation.get(broadcast_id, 0) + 1
            return
        task = asyncio.ensure_future(self._run(broadcast_id))
        self.tasks[broadcast_id] = task
        task.add_done_callback(lambda done: self._finished(broadcast_id, done))

    def _finished(self, broadcast_id: int, task: asyncio.Task[None]) -> None:
        if self.tasks.get(broadcast_id) is task:
            del self.tasks[broadcast_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("broadcast %d: delivery stopped", broadcast_id, exc_info=task.exception())

    async def wait(self, broadcast_id: int | None = None) -> None:
        """Until the passes of ``broadcast_id`` (of all broadcasts) are done."""
        while True:
            tasks = [t for i, t in self.tasks.items() if broadcast_id is None or i == broadcast_id]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, broadcast_id: int) -> None:
        pause = SESSION_PAUSE
        while True:
            broadcast = await self.repo.get(broadcast_id)
            if broadcast is None or broadcast.op_done or broadcast.op is None:
                return
            op = broadcast.op
            try:
                await self._pass(broadcast)
            except SessionLost as exc:
                log.warning(
                    "broadcast %d: session lost (%s); the pass starts again in %.0f s",
                    broadcast_id,
                    exc,
                    pause,
                )
                await asyncio.sleep(pause)
                pause = min(SESSION_PAUSE_MAX, pause * 2)
                continue
            pause = SESSION_PAUSE
            fresh = await self.repo.get(broadcast_id)
            if fresh is not None and fresh.op == op:  # no new work came in meanwhile
                if fresh.state == "sending":
                    await self.repo.move(
                        broadcast_id, ["sending"], "done", finished_at=epoch_now(self.services)
                    )
                await self.repo.update(broadcast_id, op_done=1)
                return

    # --- one pass -----------------------------------------------------------------------------

    async def _pass(self, broadcast: Broadcast) -> None:
        rows = await self.repo.deliveries(broadcast.id, "pending", "sent")
        todo = [r for r in rows if self._work(broadcast, r) is not None]
        work = Pass(broadcast, len(todo), reported_at=self.services.clock.monotonic())
        work.progress_id = broadcast.progress_event_id  # resumed: the message posted before the stop
        await self._progress(work, final=False)
        queue: asyncio.Queue[tuple[Delivery, int]] = asyncio.Queue()
        for row in todo:
            queue.put_nowait((row, 1))
        mayors: dict[str, str] | None = None  # direct chats found on the homeserver, looked up once
        lookup = asyncio.Lock()
        current, seen = broadcast, self._generation.get(broadcast.id, 0)

        async def direct_chats(users: list[str]) -> dict[str, str]:
            nonlocal mayors
            async with lookup:
                if mayors is None:
                    unknown = [r.target for r in todo if r.kind == "mayor" and r.room_id is None]
                    known = await self.repo.direct_chats()
                    mayors = await self.services.matrix.direct_chats([u for u in unknown if u not in known])
                return mayors

        async def worker() -> None:
            nonlocal current, seen
            while True:
                try:
                    row, round_no = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if self._generation.get(broadcast.id, 0) != seen:  # changed meanwhile: read it anew
                    seen = self._generation.get(broadcast.id, 0)
                    current = await self.repo.get(broadcast.id) or current
                outcome = await self._one(current, row, direct_chats)
                if outcome == "again" and round_no < TRANSIENT_ROUNDS:
                    await asyncio.sleep(ROUND_PAUSE * round_no)
                    queue.put_nowait((row, round_no + 1))
                    continue
                if outcome not in ("ok", "again"):
                    work.failures.append((row, outcome))
                elif outcome == "again":
                    work.failures.append((row, "unreachable"))
                    if self._work(current, row) == "send":
                        await self.repo.failed(row.id, "unreachable", None)
                work.done += 1
                await self._maybe_report(work)

        workers = min(self.concurrency, max(1, len(todo)))
        results = await asyncio.gather(*(worker() for _ in range(workers)), return_exceptions=True)
        for result in results:  # every worker has stopped: the rows it did not finish stay as they are
            if isinstance(result, BaseException):
                raise result
        await self._progress(work, final=True)

    def _work(self, broadcast: Broadcast, row: Delivery) -> str | None:
        if row.state == "pending":
            return "skip" if broadcast.retracted_at else "send"
        if row.state != "sent" or row.redacted_at is not None or row.event_id is None:
            return None
        if broadcast.retracted_at:
            return "redact"
        return "edit" if row.version < broadcast.version else None

    async def _one(
        self,
        broadcast: Broadcast,
        row: Delivery,
        direct_chats: Callable[[list[str]], Awaitable[dict[str, str]]],
    ) -> str:
        """Bring one room to what it should show. Returns ``ok``, ``again`` (a passing failure)
        or the reason it failed."""
        work = self._work(broadcast, row)
        matrix = self.services.matrix
        key = f"broadcast-{broadcast.id}-{row.id}"
        try:
            if work == "skip":
                await self.repo.skipped(row.id, "retracted")
            elif work == "send":
                room_id = row.room_id or await self._direct_chat(broadcast, row, direct_chats)
                if room_id is None:
                    await self.repo.failed(row.id, "user_unknown", None)
                    return "user_unknown"
                reply = Reply("broadcast", announcement(broadcast), room_id=room_id, key=key, paced=True)
                event_id = await matrix.send(reply)
                await self.repo.sent(row.id, event_id, broadcast.version, epoch_now(self.services))
                if broadcast.pin and row.kind == "channel" and event_id:
                    await self._pin(row, room_id, event_id, True)
            elif work == "edit" and row.room_id and row.event_id:
                reply = Reply(
                    "broadcast",
                    announcement(broadcast),
                    room_id=row.room_id,
                    key=f"{key}-v{broadcast.version}",
                    paced=True,
                )
                await matrix.edit(row.event_id, reply)
                await self.repo.edited(row.id, broadcast.version)
            elif work == "redact" and row.room_id and row.event_id:
                if row.pinned:
                    await self._pin(row, row.room_id, row.event_id, False)
                await matrix.redact(row.room_id, row.event_id, key=f"{key}-redact", paced=True)
                await self.repo.redacted(row.id, epoch_now(self.services))
        except SessionLost:
            raise  # not the room's problem: the row stays as it is; the pass stops and starts again
        except MatrixError as exc:
            reason, passing = reason_of(exc)
            log.warning("broadcast %d, room %s: %s failed (%s)", broadcast.id, row.room_id, work, exc)
            if passing:
                return "again"
            if work == "send":
                await self.repo.failed(row.id, reason, str(exc))
            return reason
        return "ok"

    async def _pin(self, row: Delivery, room_id: str, event_id: str, pinned: bool) -> None:
        try:
            await self.services.matrix.pin(room_id, event_id, pinned)
        except MatrixError as exc:  # the bot may not pin there: the message stays unpinned
            log.info("broadcast: cannot %s in %s (%s)", "pin" if pinned else "unpin", room_id, exc)
            if pinned:
                await self.repo.pinned(row.id, False)
            return
        await self.repo.pinned(row.id, pinned)

    async def _direct_chat(
        self,
        broadcast: Broadcast,
        row: Delivery,
        direct_chats: Callable[[list[str]], Awaitable[dict[str, str]]],
    ) -> str | None:
        """A mayor's direct chat with the bot: the one recorded (if the person is still in it or
        invited), else one found on the homeserver, else a new one. None: no such user."""
        matrix = self.services.matrix
        user = row.target
        stale = False
        recorded = await self.repo.direct_chat(user)
        if recorded is not None:
            try:
                member = await matrix.get_state(recorded, "m.room.member", user)
            except MatrixError:
                member = None
            if (member or {}).get("membership") in ("join", "invite"):
                await self.repo.set_room(row.id, recorded)
                return recorded
            await self.repo.forget_direct_chat(user, recorded)
            stale = True
        found = (await direct_chats([user])).get(user) if not stale else None
        if found is None:
            if not await matrix.user_exists(user):
                return None
            key = f"direct-{user}" if not stale else f"direct-{user}-b{broadcast.id}"
            found = await matrix.create_direct_chat(
                user, key=key, encrypted=self.services.settings.encryption
            )
        await self.repo.record_direct_chat(user, found, epoch_now(self.services))
        await self.repo.set_room(row.id, found)
        return found

    # --- progress -----------------------------------------------------------------------------

    async def _maybe_report(self, work: Pass) -> None:
        if work.done >= work.total:
            return  # the final report follows at once
        now = self.services.clock.monotonic()
        step = max(1, math.ceil(work.total * PROGRESS_EVERY_SHARE))
        if work.done - work.reported_done >= step or (
            now - work.reported_at >= PROGRESS_EVERY_SECONDS and work.done > work.reported_done
        ):
            work.reported_at, work.reported_done = now, work.done
            await self._progress(work, final=False, done=work.done)

    async def _progress(self, work: Pass, *, final: bool, done: int | None = None) -> None:
        """The pass's progress message: posted at the start, edited in place after; the final
        counts also go out as a report (a new message, so the coordinator notices)."""
        async with work.reporting:  # edits one after the other, none older than the one shown
            count = work.done if done is None else done
            if count <= work.shown and not final:
                return
            work.shown = count
            await self._post_progress(work, final, count)

    async def _post_progress(self, work: Pass, final: bool, done: int) -> None:
        if self.on_progress is not None:
            await self.on_progress(work)
        b = work.broadcast
        counts = await self.repo.counts(b.id)
        data = {
            "id": b.id,
            "op": (b.op or "send").split("-")[0],
            "total": work.total,
            "done": done,
            "percent": 100 * done // work.total if work.total else 100,
            "counts": counts.__dict__,
            "failed_now": len(work.failures),
            "final": final,
        }
        matrix = self.services.matrix
        key = f"broadcast-{b.id}-{b.op}"
        try:
            reply = Reply("broadcast_progress", data, room_id=b.origin_room, paced=True)
            if work.progress_id is None:
                reply.key = f"{key}-progress"
                work.progress_id = await matrix.send(reply)
                await self.repo.update(b.id, progress_event_id=work.progress_id)
            else:
                await matrix.edit(work.progress_id, reply)
            if final:
                failures = [
                    {"kind": row.kind, "target": row.target, "label": row.label, "reason": reason}
                    for row, reason in work.failures[:REPORT_FAILURES]
                ]
                await matrix.send(
                    Reply(
                        "broadcast_report",
                        {**data, "failures": failures, "more": max(0, len(work.failures) - REPORT_FAILURES)},
                        room_id=b.origin_room,
                        key=f"{key}-report",
                        mentions=[b.author],
                        paced=True,
                    )
                )
        except MatrixError:  # the coordinator's room is gone: delivery goes on regardless
            log.exception("broadcast %d: could not report progress", b.id)


def deliveries(services: Services) -> Deliveries:
    found = services.cache.get(CACHE_KEY)
    if not isinstance(found, Deliveries):
        found = services.cache[CACHE_KEY] = Deliveries(services)
    return found


async def resume_unfinished(services: Services) -> int:
    """At start: passes a stop or a crash left unfinished go on where they were."""
    repo = BroadcastRepository(services.db)
    unfinished = await repo.unfinished()
    for broadcast in unfinished:
        log.info("broadcast %d: resuming %s", broadcast.id, broadcast.op)
        deliveries(services).start(broadcast.id)
    with contextlib.suppress(Exception):
        await repo.expire_drafts(int(services.clock.now().timestamp()))
    return len(unfinished)
