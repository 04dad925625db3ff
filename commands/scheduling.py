"""The scheduling engine every scheduled feature uses (check-ins, module excerpts, broadcasts).

A family declares its scheduled work with ``@scheduled("kind")`` as it declares commands, and
adds schedules for its subjects through ``Scheduling`` (``services.schedules``). The database is
the only source of truth: each schedule stores its calendar rule (``commands.rhythm``) and its
next due time; at start the agenda is rebuilt from it with one query.

Exactly once: every occurrence has a key (schedule, due time in UTC). It is recorded as pending
before it is delivered, and the message's transaction ID derives from that key, so a restart, a
crash between recording and sending, or a replay sends nothing twice (the homeserver answers a
repeated transaction ID with the first event). Occurrences missed while the bot was down are
delivered late within the grace window; older ones are recorded as missed, counted for the next
delivery, and never sent in a burst.

Time comes from the injected ``Clock``: tests move it and call ``run_due``, so a year of
schedules runs in milliseconds; the bot runs ``run`` which sleeps until the next due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from commands.context import SessionLost
from commands.rhythm import Rhythm, next_fire
from storage.schedules import Schedule, ScheduleRepository

if TYPE_CHECKING:
    from commands.context import Services

log = logging.getLogger(__name__)
LATE_AFTER = timedelta(minutes=1)  # delivered later than this after its due time: "late"
SESSION_PAUSE = 5.0  # seconds before a delivery the lost session refused is tried again (doubling)
SESSION_PAUSE_MAX = 300.0
IDLE_WAKE = 60.0  # seconds: the loop re-reads the clock at least this often (clock jumps)


@dataclass(frozen=True)
class Occurrence:
    """One due occurrence handed to the family's delivery function."""

    schedule: Schedule
    due: datetime  # UTC
    late: bool  # delivered after the bot was down, within the grace window
    missed: int  # occurrences missed (never delivered) since the last delivered one
    replay: bool = False  # recorded before a restart and not confirmed: deliver with the same key

    @property
    def key(self) -> str:
        """Stable across restarts: the transaction ID of the delivery derives from it."""
        return f"{self.schedule.kind}-{self.schedule.id}-{int(self.due.timestamp())}"


Deliver = Callable[["Services", Occurrence], Awaitable[str | None]]


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Scheduling:
    """Adds, changes and delivers schedules. One instance per bot, in ``services.schedules``."""

    def __init__(
        self,
        services: Services,
        handlers: dict[str, Deliver],
        *,
        grace: timedelta = timedelta(hours=6),
        concurrency: int = 8,
    ):
        self.services = services
        self.repo = ScheduleRepository(services.db)
        self.handlers = handlers
        self.grace = grace
        self._agenda: list[tuple[int, int]] = []  # heap of (next_due, schedule id); may hold stale rows
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task] = set()
        self._stopped = asyncio.Event()
        self.fired_late: list[float] = []  # seconds after due, of the last deliveries (for metrics)
        # occurrences since start (metrics): due (handed to delivery), late (of those, after the
        # bot was down), missed (too old to deliver), failed (the delivery raised)
        self.counted: Counter[str] = Counter()

    @property
    def zone(self) -> str:
        return self.services.settings.timezone

    def _now(self) -> datetime:
        return self.services.clock.now()

    # --- what families call -------------------------------------------------------------------

    async def add(
        self,
        kind: str,
        subject: str,
        rhythm: Rhythm,
        *,
        data: dict[str, Any] | None = None,
        created_by: str | None = None,
        not_before: datetime | None = None,
    ) -> Schedule:
        """A new schedule; its first occurrence is the first at or after ``not_before`` (now)."""
        if kind not in self.handlers:
            raise ValueError(f"no scheduled work declared for {kind!r}")
        now = self._now()
        rhythm = rhythm.anchored((not_before or now).astimezone(ZoneInfo(self.zone)).date())
        first = next_fire(rhythm.to_json(), self.zone, None, max(now, not_before or now))
        schedule_id = await self.repo.add(
            kind=kind,
            subject=subject,
            rhythm=rhythm.to_json(),
            timezone=self.zone,
            next_due=_ts(first) if first else None,
            now=_ts(now),
            data=data,
            created_by=created_by,
        )
        self._plan(schedule_id, _ts(first) if first else None)
        schedule = await self.repo.get(schedule_id)
        assert schedule is not None
        return schedule

    async def change(self, schedule: Schedule, rhythm: Rhythm) -> Schedule:
        """A new rule from now on; occurrences already delivered stay as they were."""
        now = self._now()
        rhythm = rhythm.anchored(now.astimezone(ZoneInfo(schedule.timezone)).date())
        first = next_fire(rhythm.to_json(), schedule.timezone, None, now)
        due = _ts(first) if first else None
        await self.repo.update(schedule.id, _ts(now), rhythm=rhythm.to_json(), next_due=due)
        self._plan(schedule.id, due if schedule.state == "active" else None)
        return await self._reload(schedule.id)

    async def pause(self, schedule: Schedule) -> Schedule:
        await self.repo.update(schedule.id, _ts(self._now()), state="paused")
        return await self._reload(schedule.id)

    async def resume(self, schedule: Schedule) -> Schedule:
        """Resumed rules continue with their next occurrence from now; nothing missed meanwhile
        is delivered or counted."""
        now = self._now()
        first = next_fire(schedule.rhythm, schedule.timezone, None, now)
        due = _ts(first) if first else None
        await self.repo.update(schedule.id, _ts(now), state="active", next_due=due, missed=0)
        self._plan(schedule.id, due)
        return await self._reload(schedule.id)

    async def end(self, schedule: Schedule) -> None:
        await self.repo.update(schedule.id, _ts(self._now()), state="ended", next_due=None)

    async def update_data(self, schedule: Schedule, data: dict[str, Any]) -> None:
        await self.repo.update(schedule.id, _ts(self._now()), data=data)

    async def run_now(self, schedule: Schedule) -> str | None:
        """An extra occurrence now (a coordinator's "check in now"), with its own key; the
        regular rhythm is not moved."""
        now = _ts(self._now())
        await self.repo.record(schedule, due=now, missed=[], next_due=schedule.next_due, now=now)
        occurrence = Occurrence(schedule, _dt(now), late=False, missed=schedule.missed)
        return await self._deliver(occurrence)

    # --- the engine ---------------------------------------------------------------------------

    async def load(self) -> int:
        """Rebuild the agenda from the database (at start). Returns the number of schedules."""
        self._agenda = await self.repo.due_times()
        heapq.heapify(self._agenda)
        return len(self._agenda)

    def _plan(self, schedule_id: int, due: int | None) -> None:
        if due is not None:
            heapq.heappush(self._agenda, (due, schedule_id))
            self._wake.set()

    async def _reload(self, schedule_id: int) -> Schedule:
        schedule = await self.repo.get(schedule_id)
        assert schedule is not None
        return schedule

    def next_wake(self) -> int | None:
        return self._agenda[0][0] if self._agenda else None

    def overdue(self, now: datetime | None = None, slack: timedelta = LATE_AFTER) -> int:
        """Planned occurrences whose time passed more than ``slack`` ago without being started:
        more than none for long means the engine does not run (metrics, health)."""
        limit = _ts((now or self._now()) - slack)
        return sum(1 for due, _ in self._agenda if due <= limit)

    async def replay_pending(self) -> int:
        """Occurrences recorded but not confirmed before a stop: delivered again with the same
        key within the grace window (the homeserver deduplicates the send), else marked failed."""
        count = 0
        now = self._now()
        for schedule_id, due in await self.repo.pending():
            schedule = await self.repo.get(schedule_id)
            if schedule is None or schedule.state == "ended":
                continue
            if now - _dt(due) > self.grace:
                await self.repo.failed(schedule_id, due, "not confirmed before a stop", _ts(now))
                continue
            occurrence = Occurrence(schedule, _dt(due), late=True, missed=schedule.missed, replay=True)
            self.counted.update(("due", "late"))
            self._spawn(occurrence)
            count += 1
        return count

    async def run_due(self, now: datetime | None = None) -> int:
        """Handle every occurrence due at ``now``; returns how many deliveries were started.
        Deliveries run concurrently (bounded); ``drain`` waits for them."""
        now = now or self._now()
        started = 0
        while self._agenda and self._agenda[0][0] <= _ts(now):
            due, schedule_id = heapq.heappop(self._agenda)
            schedule = await self.repo.get(schedule_id)
            if schedule is None or schedule.state != "active" or schedule.next_due != due:
                continue  # changed, paused or ended since it was planned
            occurrence = await self._advance(schedule, now)
            if occurrence is not None:
                self.counted.update(("due", "late") if occurrence.late else ("due",))
                self._spawn(occurrence)
                started += 1
        return started

    async def _advance(self, schedule: Schedule, now: datetime) -> Occurrence | None:
        """Record what is due of ``schedule`` at ``now`` and move it to its next occurrence."""
        assert schedule.next_due is not None
        due: datetime | None = _dt(schedule.next_due)
        missed: list[int] = []
        while due is not None and due <= now and now - due > self.grace:
            missed.append(_ts(due))
            due = next_fire(schedule.rhythm, schedule.timezone, due, now)
        deliver = due if due is not None and due <= now else None
        following = next_fire(schedule.rhythm, schedule.timezone, deliver, now) if deliver else due
        if missed:
            self.counted["missed"] += len(missed)
            log.info("schedule %d (%s): %d occurrence(s) missed", schedule.id, schedule.kind, len(missed))
        fresh = await self.repo.record(
            schedule,
            due=_ts(deliver) if deliver else None,
            missed=missed,
            next_due=_ts(following) if following else None,
            now=_ts(now),
        )
        self._plan(schedule.id, _ts(following) if following else None)
        if deliver is None or not fresh:
            return None
        return Occurrence(
            schedule,
            deliver,
            late=now - deliver > LATE_AFTER,
            missed=schedule.missed + len(missed),
        )

    def _spawn(self, occurrence: Occurrence) -> None:
        task = asyncio.ensure_future(self._deliver(occurrence))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _deliver(self, occurrence: Occurrence) -> str | None:
        schedule, due = occurrence.schedule, _ts(occurrence.due)
        handler = self.handlers.get(schedule.kind)
        async with self._slots:
            if handler is None:
                await self.repo.failed(schedule.id, due, "no handler declared", _ts(self._now()))
                return None
            try:
                event_id = await self._attempts(handler, occurrence)
            except SessionLost as exc:  # stopped before the new login: replayed at the next start
                log.warning("schedule %d (%s): %s left pending (%s)", schedule.id, schedule.kind, due, exc)
                return None
            except Exception as exc:
                log.exception("schedule %d (%s): delivery of %s failed", schedule.id, schedule.kind, due)
                self.counted["failed"] += 1
                await self.repo.failed(schedule.id, due, f"{type(exc).__name__}: {exc}", _ts(self._now()))
                return None
            now = self._now()
            await self.repo.delivered(schedule.id, due, event_id, _ts(now))
            self.fired_late.append((now - occurrence.due).total_seconds())
            del self.fired_late[:-1000]
            return event_id

    async def _attempts(self, handler: Any, occurrence: Occurrence) -> str | None:
        """Deliver ``occurrence``; while the bot's session is lost (``SessionLost``: the bot logs
        in again) it stays pending and is tried again after a pause, with the same key."""
        pause = SESSION_PAUSE
        while True:
            try:
                return await handler(self.services, occurrence)
            except SessionLost as exc:
                if self._stopped.is_set():
                    raise
                log.warning(
                    "schedule %d: session lost (%s); trying again in %.0f s",
                    occurrence.schedule.id,
                    exc,
                    pause,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), pause)
                if self._stopped.is_set():
                    raise
            pause = min(SESSION_PAUSE_MAX, pause * 2)

    async def drain(self) -> None:
        """Wait for the deliveries in flight."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def run(self) -> None:
        """The bot's loop: replay what a stop left pending, then wake at each due time."""
        await self.load()
        await self.replay_pending()
        while not self._stopped.is_set():
            try:
                await self.run_due()
            except Exception:  # a broken database row must not end scheduling for everyone
                log.exception("scheduled work could not be handled; trying again shortly")
                await asyncio.sleep(5)
                continue
            wake = self.next_wake()
            # due times are whole seconds: wake just after, not a busy loop just before
            seconds = IDLE_WAKE if wake is None else max(0.0, wake - self._now().timestamp() + 0.005)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(seconds, IDLE_WAKE))

    async def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        await self.drain()
