"""A sync batch becomes work: per room, in order, beside the sync loop.

What must happen in sync order is done at once, while the loop waits: join times, role
invalidation, and queueing each room's messages behind that room's earlier batches. The rest
(fetching the gap of a limited timeline, answering, invitations, leaving) runs in the batch's
task (``bot.batches``), so a slow command never holds up syncing: a handler that creates a room
needs the next sync to see it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from nio import PowerLevelsEvent, RoomMemberEvent, SyncResponse

from bot.batches import Batch, Batches, BatchIncomplete
from bot.catch_up import CatchUp, Gap, GapNotFetched, find_gap
from bot.incoming import HANDLED_EVENTS, IncomingMessages
from bot.membership import Membership
from bot.roles import RoleResolver
from commands.context import SessionLost

log = logging.getLogger(__name__)


@dataclass
class RoomWork:
    """What one batch brings for one room: the gap before its timeline, then its messages."""

    gap: Gap | None = None
    events: list[Any] = field(default_factory=list)
    maybe_handled: bool = True  # an earlier process may have answered its events (see route)
    session: int = 0  # the login it was routed in (``Router.resume``)


class Router:
    def __init__(
        self,
        membership: Membership,
        roles: RoleResolver,
        incoming: IncomingMessages,
        catch_up: CatchUp,
        batches: Batches,
    ):
        self.membership = membership
        self.roles = roles
        self.incoming = incoming
        self.catch_up = catch_up
        self.batches = batches
        self._room_tails: dict[str, asyncio.Task[None]] = {}
        self._position: str | None = None  # the token of the last batch this process routed
        self.queued = 0  # events the last batch queued to be handled
        self.gaps = False  # whether it found a gap to fetch first (events left out of a timeline)
        self.session = 0  # raised by each new login after the old session was lost

    async def resume(self) -> str | None:
        """After a new login (the homeserver stopped accepting the old token): the token to sync
        from, the last one stored. The work routed before is replayed from there (commands a
        lost session left unanswered are answered; answered ones are skipped), so what was
        routed before and has not started yet is left to the replay, and the replayed events
        are checked against the record of answered events."""
        self.session += 1
        self._position = None
        return await self.batches.resume()

    def route(self, response: SyncResponse, since: str | None, behind: Batch | None = None) -> set[str]:
        """Queue the work of one sync batch (``since``: the token it was asked with). Returns the
        rooms with something to handle.

        A batch asked for with the token of a batch this process routed holds only events that
        came after this process's first sync, so no earlier process can have answered them: its
        events skip the database's record of answered events (one read on the way from a
        command to its answer). The first batch of a process, which may replay what a process
        answered before a crash, is checked against it.

        ``behind``: a part of a first sync taken behind the live syncs (``bot.sync_loop``), whose
        work belongs to that held place in the order. Its events are checked against the
        record, and it leaves the live syncs' position and counts alone."""
        maybe_handled = since is None or since != self._position or behind is not None
        if behind is None:
            self._position = response.next_batch
        work: dict[str, RoomWork] = {}
        leave_checks: list[str] = []
        new_joins = {
            room_id: self.membership.join_time(room_id, info, live=behind is None)
            for room_id, info in response.rooms.join.items()
            if self.membership.is_new(room_id)
        }
        left = list(response.rooms.leave)
        self.membership.note(new_joins, left)
        dated = {room_id: ms for room_id, ms in new_joins.items() if self.membership.is_dated(room_id)}
        for room_id, info in response.rooms.join.items():
            for event in [*info.state, *info.timeline.events]:
                if isinstance(event, PowerLevelsEvent):
                    self.roles.invalidate(room_id)
            room = RoomWork(maybe_handled=maybe_handled, session=self.session)
            for event in info.timeline.events:
                if isinstance(event, RoomMemberEvent) and event.membership == "leave":
                    leave_checks.append(room_id)
                if isinstance(event, HANDLED_EVENTS):
                    room.events.append(event)
            room.gap = find_gap(room_id, info.timeline, since, self.incoming.cutoff(room_id))
            if room.events or room.gap:
                work[room_id] = room
        room_tasks = [self._queue(room_id, room) for room_id, room in work.items()]
        if behind is None:
            self.queued = sum(len(room.events) for room in work.values())
            self.gaps = any(room.gap is not None for room in work.values())
        # the batch's task keeps only what it needs, not the whole parsed response
        invites = dict(response.rooms.invite)
        self.batches.add(
            response.next_batch, self._finish(invites, left, dated, leave_checks, room_tasks), into=behind
        )
        return set(work)

    def working(self, room_id: str) -> bool:
        """Whether work is queued or running for the room."""
        return room_id in self._room_tails

    async def settled(self, room_ids: set[str], timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the work queued for ``room_ids`` is done."""
        tasks = [self._room_tails[room_id] for room_id in room_ids if room_id in self._room_tails]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _queue(self, room_id: str, room: RoomWork) -> asyncio.Task[None]:
        """Events of one room are handled in order, after that room's earlier batches."""
        previous = self._room_tails.get(room_id)
        task = asyncio.ensure_future(self._handle_room(room_id, room, previous))
        self._room_tails[room_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._room_tails.get(room_id) is done:
                del self._room_tails[room_id]

        task.add_done_callback(forget)
        return task

    async def _handle_room(self, room_id: str, room: RoomWork, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if room.session != self.session:  # routed before a new login: the replay handles it
            return
        events: list[Any] = room.events
        problem: Exception | None = None
        if room.gap is not None:
            try:
                gap = await self.catch_up.fetch(room.gap)
            except GapNotFetched as exc:
                problem = exc  # the timeline is still answered; the batch is not complete
            else:
                seen = {event.event_id for event in events}
                events = [event for event in gap if event.event_id not in seen] + events
        for event in events:
            try:
                await self.incoming.handle(room_id, event, maybe_handled=room.maybe_handled)
            except SessionLost as exc:
                # the homeserver no longer takes the bot's token: this and the room's later events
                # stay unanswered, in order, for the replay after the new login
                log.warning("session lost while handling %s in %s: %s", event.event_id, room_id, exc)
                problem = exc
                break
            except Exception:
                log.exception("event %s in %s could not be handled", event.event_id, room_id)
        if problem is not None:
            raise problem

    async def _finish(
        self,
        invites: dict[str, Any],
        left: list[str],
        new_joins: dict[str, int],
        leave_checks: list[str],
        room_tasks: list[asyncio.Task[None]],
    ) -> None:
        """The batch's work beside its rooms' messages. Every step is tried and the room tasks
        are awaited whatever fails; any failure then fails the batch (its token is not stored)."""
        failures: list[BaseException] = []
        for room_id, info in invites.items():
            try:
                await self.membership.on_invite(room_id, info)
            except Exception as exc:
                log.exception("invitation to %s could not be handled", room_id)
                failures.append(exc)
        try:
            await self.membership.record(new_joins, left)
        except Exception as exc:
            log.exception("joined and left rooms could not be recorded")
            failures.append(exc)
        for room_id in dict.fromkeys(leave_checks):
            try:
                await self.membership.leave_if_empty(room_id)
            except Exception as exc:
                log.exception("could not leave %s", room_id)
                failures.append(exc)
        results = await asyncio.gather(*room_tasks, return_exceptions=True)
        failures += [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise BatchIncomplete(f"{len(failures)} step(s) failed, the first: {failures[0]!r}")
