"""The sync loop: ask the homeserver what is new, hand each batch to the router, go on.

- A new device or database (no stored token) starts from where the homeserver stands now: a
  sync without rooms gives the position at once, whatever the number of rooms (for 1,000 rooms
  Synapse needs seconds of CPU for a first sync that lists them, and milliseconds for one that
  does not). The live syncs go on from there, so commands sent from then on are answered at
  once. The first sync itself (the rooms' state, their invitations, and the commands that were
  waiting) runs behind them: in pages of ``ROOMS_PER_PAGE`` rooms through sliding sync where the
  homeserver has it (each page a tenth of a second of its time, so the live syncs and the
  answers never wait long behind it), else fetched as text and taken in parts of
  ``ROOMS_PER_PART`` rooms (``bot.initial_sync``); nio then keeps only the rooms with messages
  to handle, as after a restart. Its place in the order is held (``Batches.hold``): no token
  is stored before its backlog is answered, so a crash meanwhile replays the whole start.
- After a restart the loop continues from the stored token, without full state: nio keeps which
  rooms are encrypted in its store, rooms are rebuilt as events arrive, members are fetched
  when needed.
- The homeserver being down never ends the loop: back-off with jitter, recovery without
  restart; a refused sync honours ``retry_after_ms``. A token the homeserver no longer knows
  means a new login with the password (``bot.session``), and syncing goes on from the last
  stored token: commands the lost session could not answer (``SessionLost``) are replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from nio import AsyncClient, SyncError, SyncResponse, UploadFilterResponse

from bot.backoff import Backoff, pause
from bot.batches import Batch
from bot.initial_sync import (
    ROOMS_PER_PAGE,
    ROOMS_PER_PART,
    fetch_initial_sync,
    fetch_sliding_page,
    sliding_request,
    split_sync_response,
)
from bot.routing import Router
from bot.session import LoginFailed
from config.settings import Settings
from storage.runtime_state import FirstSyncProgress, RuntimeStateRepository

log = logging.getLogger(__name__)
FIRST_ANSWERS_WAIT = 2.0  # seconds a first sync's remaining parts wait for the answers of a part
# After each sliding-sync page, the first sync waits as long again as the page took (asked for,
# received, handed on), at most this long: half the time the homeserver and the bot's loop are
# free for the live syncs and their answers, which would otherwise queue behind page after page.
PAGE_PAUSE_MAX = 1.0
# A start that resumes the pages of a first start (a clean stop came between them) is a restart
# for the live syncs: its remaining pages wait until the first live batch is handed on and its
# answers are out, at most this long for each, so the homeserver computes no page while the
# restart's first sync and answers wait for it.
RESUME_WAIT = 10.0
# Seconds the answers of a batch with a few events go ahead of the next sync request. The
# homeserver then persists an answer before it takes up the next long poll (on one reactor
# thread); a bare nio bot's callbacks send in the same order. A slow handler (one that waits for
# the next sync to see a room it created) holds syncing up no longer than this. A first batch, or
# one with more events or a gap to fetch (the catch-up after a start or an outage), holds nothing
# up: the commands of the next sync do not wait behind it.
ANSWERS_AHEAD = 0.25
ANSWERS_AHEAD_EVENTS = 3

# The room state the bot needs from sync: encryption (nio must encrypt), membership (lazy-loaded)
# and power levels (their change invalidates cached roles). Names, avatars, aliases and the rest
# are never read.
STATE_TYPES = ["m.room.create", "m.room.encryption", "m.room.member", "m.room.power_levels"]
# The first sync of a new device (no stored token) answers for every room at once, so it leaves
# out what only matters as a change: power levels (roles are read from the server when needed)
# and the create event. For a bot in 1,000 rooms that is over a third less JSON to parse.
INITIAL_STATE_TYPES = ["m.room.encryption", "m.room.member"]
# The timeline adds what the bot answers: messages, and encrypted ones (which nio decrypts);
# reactions and redactions answer check-ins and confirm broadcasts.
ANSWERED_TYPES = ["m.room.message", "m.room.encrypted", "m.reaction", "m.room.redaction"]
# The event fields nio parses; ``unsigned`` (age, previous content) is dropped except the marker
# of a redacted event and a member event's previous membership (the bot's own join→join member
# event, a change of its name or avatar, is no new join: ``Membership.join_time``).
EVENT_FIELDS = [
    "type",
    "content",
    "sender",
    "redacts",
    "state_key",
    "event_id",
    "origin_server_ts",
    "unsigned.redacted_because",
    "unsigned.prev_content.membership",
]


# A sync that lists no room: the homeserver's position now, at once, whatever the number of rooms
POSITION_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {"rooms": []},
}
# What a first sync behind the live syncs leaves to them: the device's messages and key state
DEVICE_KEYS = ("to_device", "device_lists", "device_one_time_keys_count", "device_unused_fallback_key_types")


def sync_filter(timeline_limit: int, initial: bool = False) -> dict[str, Any]:
    """Lazy-loaded members, needed state and event types only, short timelines, no presence,
    receipts or typing. ``initial``: the leaner filter for a first sync without a token."""
    state_types = INITIAL_STATE_TYPES if initial else STATE_TYPES
    return {
        "event_fields": EVENT_FIELDS,
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "state": {"lazy_load_members": True, "types": state_types},
            "timeline": {
                "limit": timeline_limit,
                "lazy_load_members": True,
                "types": [*state_types, *ANSWERED_TYPES],
            },
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
    }


async def set_up(prepared: asyncio.Future[None]) -> bool:
    """Wait for the local set-up a first sync's parts need; whether it succeeded."""
    if not prepared.done():
        await asyncio.wait([prepared])
    return not prepared.cancelled() and prepared.exception() is None


def gap_filter() -> dict[str, Any]:
    """The filter for fetching the gap of a limited timeline (``/messages``): the events the
    bot answers, members lazy-loaded."""
    return {"types": ANSWERED_TYPES, "lazy_load_members": True}


class SyncLoop:
    def __init__(
        self,
        client: AsyncClient,
        settings: Settings,
        repo: RuntimeStateRepository,
        router: Router,
        backoff: Backoff,
        stop: asyncio.Event,
    ):
        self.client = client
        self.settings = settings
        self.repo = repo
        self.router = router
        self.backoff = backoff
        self.stop = stop
        self.request: asyncio.Future[Any] | None = None  # the sync request in flight
        self.busy: set[str] = set()  # the rooms of the last batch with something to handle
        self.filter_id: str | None = None  # the later syncs' filter, once the homeserver keeps it
        self._filter_upload: asyncio.Future[None] | None = None
        self.behind: asyncio.Task[None] | None = None  # a first start's first sync, behind the live ones
        self._held: Batch | None = None  # its place in the order of batches
        self._shown: set[str] | None = None  # the rooms its parts have shown nio so far
        self._behind_request: asyncio.Future[Any] | None = None  # its request in flight
        self.resumed: FirstSyncProgress | None = None  # the progress this start's first sync resumed
        self._paged: tuple[str, int] | None = None  # position and last room of the last page handed on
        self._stopped: tuple[Batch, str, int] | None = None  # a first sync stopped after some pages
        self._first_handed = asyncio.Event()  # the first live batch is handed on ...
        self._first_busy: set[str] = set()  # ... with work in these rooms

    def cancel_request(self) -> None:
        """On stop: the sync requests in flight (the live one, and a first sync behind it that
        the homeserver still computes) are given up; work already handed on finishes."""
        for request in (self.request, self._behind_request):
            if request is not None and not request.done():
                request.cancel()

    async def run(
        self,
        connect: Callable[[], Awaitable[bool]],
        prepare: Callable[[], asyncio.Future[None]],
        synced: Callable[[bool], Awaitable[None]],
    ) -> None:
        """Sync until ``stop`` is set. ``prepare`` starts the local set-up once the first sync
        request is on its way, so the homeserver computes the sync meanwhile; the first batch
        waits for it, and a failed set-up ends the loop, loudly. ``synced(first)`` runs after
        each handed-on batch; ``connect`` logs in again."""
        prepared: asyncio.Future[None] | None = None
        token = await self.repo.sync_token()
        resume = await self.repo.take_first_sync_progress() if token is None else None
        if resume is not None:  # a first start stopped cleanly during its pages: go on from there
            token = resume.live_token
        timeline_limit = self.settings.sync.timeline_limit
        room_filter = sync_filter(timeline_limit)
        first = True
        while not self.stop.is_set():
            request: Awaitable[Any]
            probe = token is None
            if probe:
                # a new device or database: the position now, without rooms; the first sync
                # follows behind the live syncs (``_first_sync_behind``)
                self.client.next_batch = None
                request = self.client.sync(timeout=0, sync_filter=POSITION_FILTER)
            else:
                request = self.client.sync(
                    timeout=0 if first else self.settings.sync.timeout_ms,
                    sync_filter=self.filter_id or room_filter,
                    since=token,
                )
            self.request = asyncio.ensure_future(request)
            if prepared is None:
                prepared = prepare()
            if resume is not None:  # the pages go on from where the stop left them
                self._start_behind(sync_filter(timeline_limit, initial=True), prepared, resume)
                resume = None
            elif probe and self._held is None:  # its request goes out now, beside the position's
                self._start_behind(sync_filter(timeline_limit, initial=True), prepared)
            try:
                response = await self.request
            except asyncio.CancelledError:
                if self.stop.is_set():
                    break
                raise
            except (TimeoutError, OSError, ClientError) as exc:
                await pause(self.backoff.failed(type(exc).__name__), self.stop)
                continue
            finally:
                self.request = None
            if not isinstance(response, SyncError):
                if not prepared.done():
                    await prepared
                prepared.result()
                response = await self.receive(response, since=token)  # now the batch's token
            if isinstance(response, SyncError):
                if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                    if self.settings.access_token is not None:
                        raise LoginFailed(
                            "the configured access_token is no longer valid; "
                            "put a new one into the configuration"
                        )
                    log.warning("the homeserver no longer knows the access token; logging in again")
                    self._stop_behind()  # the replay starts the first start over
                    if not await connect():
                        break
                    # from the last completed batch: what the lost session left unanswered is
                    # replayed (answered commands are skipped)
                    token = await self.router.resume()
                    continue
                await pause(self.refused(response), self.stop)
                continue
            self.backoff.succeeded()
            token = response
            await synced(first)
            if first:  # the next sync holds what came while the first was computed: at once
                first = False
                self._first_busy = set(self.busy)
                self._first_handed.set()
                continue
            few = not self.router.gaps and self.router.queued <= ANSWERS_AHEAD_EVENTS
            if self.busy and few:  # the answers first, then the next long poll
                await self.router.settled(self.busy, ANSWERS_AHEAD)
            if self._filter_upload is None:  # once the start's answers are under way
                self._filter_upload = asyncio.ensure_future(self._keep_filter(room_filter))

    def _start_behind(
        self,
        first_filter: dict[str, Any],
        prepared: asyncio.Future[None],
        resume: FirstSyncProgress | None = None,
    ) -> None:
        """A first start: the first sync runs behind the live syncs, in a held place (taken
        before the position's batch). Its request goes out at once; its parts are handed on
        once the local set-up (``prepared``) is done. ``resume``: the pages a clean stop
        interrupted go on from its position (the rooms handed on before are not sent again)."""
        self._held = self.router.batches.hold()
        self._shown = set()
        self.resumed = resume
        self._paged = None
        self.router.membership.begin_first_sync()
        self.behind = asyncio.ensure_future(
            self._first_sync_behind(self._held, first_filter, prepared, resume)
        )

    def _stop_behind(self) -> None:
        if self.behind is not None and not self.behind.done():
            self.behind.cancel()
        self._end_behind()

    def _end_behind(self) -> None:
        self._held = None
        self._shown = None
        self.router.membership.end_first_sync()

    def encryption_known(self, room_id: str) -> bool:
        """Whether nio can know if the room is encrypted: not during a first start, for a room
        the first sync has not shown yet (``MessageSender`` then asks the homeserver)."""
        return self._shown is None or room_id in self._shown

    async def _first_sync_behind(
        self,
        held: Batch,
        first_filter: dict[str, Any],
        prepared: asyncio.Future[None],
        resume: FirstSyncProgress | None = None,
    ) -> None:
        """The first sync of a first start: fetched while the live syncs run, then handed on in
        parts. Failures are retried with their own back-off; a lost session ends it (the loop
        logs in again and starts over). Once its backlog is handled, the held place is released
        and the live syncs' tokens are stored; if it never completes, none is."""
        backoff = Backoff(self.backoff.initial, self.backoff.maximum)
        complete = False
        try:
            if self.settings.sync.sliding_first_sync:
                paged = await self._sliding_first_sync(held, prepared, backoff, resume)
                if paged is not None:  # None: the homeserver has no sliding sync
                    complete = paged
                    return
            while not self.stop.is_set():
                self._behind_request = asyncio.ensure_future(fetch_initial_sync(self.client, first_filter))
                try:
                    response: str | SyncError = await self._behind_request
                except asyncio.CancelledError:
                    if self.stop.is_set():
                        return  # stopped: incomplete, the next start begins anew
                    raise
                except (TimeoutError, OSError, ClientError) as exc:
                    await pause(backoff.failed(type(exc).__name__), self.stop)
                    continue
                if not isinstance(response, SyncError):
                    if not await set_up(prepared):
                        return  # the set-up failed: the loop ends with its error
                    response = await self.receive(response, since=None, behind=held)
                if isinstance(response, SyncError):
                    if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                        return  # the live loop logs in again and starts over
                    delay = backoff.failed(f"{response.status_code} {response.message}")
                    await pause(max(delay, (response.retry_after_ms or 0) / 1000), self.stop)
                    continue
                complete = True
                log.info("first sync handed on: %d rooms", len(self.router.membership))
                return
        finally:
            if self._held is held:
                self._end_behind()
            if not complete and self.stop.is_set() and self._paged is not None:
                self._stopped = (held, *self._paged)  # kept by ``keep_progress`` after the drain
            await self.router.batches.release(held, complete)

    async def keep_progress(self) -> None:
        """After a clean stop's drain: a first sync stopped between its pages leaves where it
        stood (``FirstSyncProgress``), so the next start syncs on from the live syncs' token
        and takes the remaining pages behind them, instead of beginning the first start anew.
        Only when every batch routed so far is handled (none failed); else nothing is kept and
        the next start replays the whole start, as after a crash."""
        if self._stopped is None:
            return
        held, position, end = self._stopped
        live = self.router.batches.handled_behind(held)
        if live is None:
            log.info("the first sync stopped with work unhandled; the next start begins it anew")
            return
        await self.repo.save_first_sync_progress(FirstSyncProgress(live, position, end))
        log.info("the first sync stopped after %d room(s); the next start goes on from there", end + 1)

    async def _sliding_first_sync(
        self,
        held: Batch,
        prepared: asyncio.Future[None],
        backoff: Backoff,
        resume: FirstSyncProgress | None = None,
    ) -> bool | None:
        """The first sync of a first start through sliding sync, page by page: each page widens
        the list by ``ROOMS_PER_PAGE`` rooms (most recent first) and its new rooms are handed
        on before the next is asked for, after a pause as long as the page took
        (``PAGE_PAUSE_MAX`` at most). True once every room was handed on; False if stopped,
        the set-up failed or the session was lost; None if the homeserver has no sliding sync
        (then the first sync is taken in one request). A failed page is asked for again with
        the back-off; a position the homeserver no longer knows starts the pages over (rooms
        handed on twice are answered once). ``resume``: go on after the pages a clean stop
        interrupted, once the first live batch's answers are out (``RESUME_WAIT``)."""
        sync = self.settings.sync
        position: str | None = None
        end = ROOMS_PER_PAGE - 1
        if resume is not None:
            position, end = resume.position, resume.end + ROOMS_PER_PAGE
            self._paged = (resume.position, resume.end)  # a stop before the next page keeps it
            await self._first_answers_out()
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            began = loop.time()
            body = sliding_request(end, sync.timeline_limit, INITIAL_STATE_TYPES)
            request = asyncio.ensure_future(fetch_sliding_page(self.client, body, position))
            self._behind_request = request
            try:
                page = await request
            except asyncio.CancelledError:
                if self.stop.is_set():
                    return False
                raise
            except (TimeoutError, OSError, ClientError) as exc:
                await pause(backoff.failed(type(exc).__name__), self.stop)
                continue
            if page is None:
                if position is None:
                    log.info("the homeserver has no sliding sync; the first sync comes in one request")
                    return None
                position, end = None, ROOMS_PER_PAGE - 1  # no longer answered: from the start
                continue
            if isinstance(page, SyncError):
                if page.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                    return False  # the live loop logs in again and starts over
                if page.status_code == "M_UNKNOWN_POS":
                    position, end = None, ROOMS_PER_PAGE - 1
                    continue
                delay = backoff.failed(f"{page.status_code} {page.message}")
                await pause(max(delay, (page.retry_after_ms or 0) / 1000), self.stop)
                continue
            backoff.succeeded()
            if not await set_up(prepared):
                return False  # the set-up failed: the loop ends with its error
            handed = await self._receive_part(page.part, None, held)
            if isinstance(handed, SyncError):  # not a valid sync response: the page again
                await pause(backoff.failed(handed.message), self.stop)
                continue
            position = page.position
            self._paged = (position, end)
            if end + 1 >= page.count:
                return True
            end += ROOMS_PER_PAGE
            await pause(min(loop.time() - began, PAGE_PAUSE_MAX), self.stop)  # the live syncs' turn
        return False

    async def _first_answers_out(self) -> None:
        """Until the first live batch is handed on and its answers are out (``RESUME_WAIT`` at
        most for each), or the loop is asked to stop."""
        waits = [asyncio.ensure_future(self._first_handed.wait()), asyncio.ensure_future(self.stop.wait())]
        try:
            await asyncio.wait(waits, timeout=RESUME_WAIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._first_handed.is_set() and not self.stop.is_set():
            await self.router.settled(self._first_busy, RESUME_WAIT)

    async def _keep_filter(self, room_filter: dict[str, Any]) -> None:
        """Upload the filter of later syncs once, after the second sync (the start does not wait
        for it): a sync that names a stored filter is lighter for both sides than one carrying
        it inline (the homeserver parses and validates an inline filter on every request). If
        the upload fails, the syncs go on with the filter inline."""
        try:
            response = await self.client.upload_filter(
                event_fields=room_filter["event_fields"],
                presence=room_filter["presence"],
                account_data=room_filter["account_data"],
                room=room_filter["room"],
            )
        except Exception as exc:  # storing it is optional: whatever fails, the syncs go on
            log.info("sync filter not stored (%r); syncs carry it inline", exc)
            return
        if isinstance(response, UploadFilterResponse):
            self.filter_id = response.filter_id
        else:
            log.info("sync filter not stored (%s); syncs carry it inline", response)

    def refused(self, error: SyncError) -> float:
        """Seconds to wait after a refused sync: the back-off, or longer if the homeserver asks
        for it (HTTP 429 with ``retry_after_ms``)."""
        delay = self.backoff.failed(f"{error.status_code} {error.message}")
        return max(delay, (error.retry_after_ms or 0) / 1000)

    async def receive(
        self, response: SyncResponse | str, since: str | None, behind: Batch | None = None
    ) -> str | SyncError:
        """Hand a sync batch to the router; returns its token. The body of a first sync (text)
        is split into parts of a few rooms (``bot.initial_sync``), each received by nio and
        routed before the next is parsed; nio then keeps only the rooms with messages to
        handle, as after a restart. Rooms with events the bot answers come first, and their
        answers go out (or ``FIRST_ANSWERS_WAIT`` passes) before the rest is parsed.

        ``behind``: the first sync of a first start, behind the live syncs (its held place).
        The live syncs own the device's state (to-device messages, key counts, device lists)
        and nio's position; the first sync adds the rooms' state and their backlog."""
        if isinstance(response, SyncResponse):  # nio has received it already
            self.busy = self.router.route(response, since)
            return response.next_batch
        if behind is None:
            self.busy = set()
        token: str | SyncError = SyncError("the first sync response holds no parts")
        try:
            for part in split_sync_response(response, ROOMS_PER_PART, ANSWERED_TYPES):
                token = await self._receive_part(part, since, behind)
                if isinstance(token, SyncError):
                    return token
        except ValueError as exc:
            return SyncError(f"the sync response is not valid JSON: {exc}")
        return token

    async def _receive_part(
        self, part: dict[str, Any], since: str | None, behind: Batch | None
    ) -> str | SyncError:
        """One part of a first sync (a part of its text, or a sliding-sync page): received by
        nio, routed, its idle rooms forgotten; its rooms with commands answered (or
        ``FIRST_ANSWERS_WAIT`` passed) before the next part. Returns its token."""
        if behind is not None:
            for key in DEVICE_KEYS:
                part.pop(key, None)
        batch = SyncResponse.from_dict(part)
        del part
        if isinstance(batch, SyncError):
            return batch
        known = set(self.client.rooms) if behind is not None else set()
        position = self.client.next_batch
        self.client.next_batch = None  # nio skips a response whose token it has seen
        await self.client.receive_response(batch)
        if behind is not None:
            self.client.next_batch = position  # the live syncs' position stays nio's
            if self._shown is not None:
                self._shown.update(batch.rooms.join)
        busy = self.router.route(batch, since, behind)
        self._forget_idle_rooms(batch, keep=busy | known)
        if busy:  # rooms with commands come first: answer them before parsing the rest
            await self.router.settled(busy, FIRST_ANSWERS_WAIT)
        return batch.next_batch

    def _forget_idle_rooms(self, part: SyncResponse, keep: set[str]) -> None:
        """Of the rooms in a part of a first sync, nio keeps only those with messages to handle,
        as after a restart: the others are rebuilt when their next event arrives or the bot
        posts there (nio's store keeps which rooms are encrypted; members are fetched then).
        nio holds about 3 KB per room, which a bot in thousands of rooms would otherwise carry
        for nothing."""
        for room_id in part.rooms.join:
            if room_id not in keep and not self.router.working(room_id):
                self.client.rooms.pop(room_id, None)
