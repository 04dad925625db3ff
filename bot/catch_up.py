"""Catch-up: the messages a limited sync timeline left out, fetched with ``/messages``.

A sync gives at most ``sync.timeline_limit`` events per room. When more arrived since the last
sync (after downtime, or a burst while a long batch ran), the room's timeline is ``limited``:
it holds only the newest events, and ``prev_batch`` marks where it starts. The gap between the
previous sync's position and ``prev_batch`` is fetched backwards, page by page, with the bot's
event filter, and handled before the timeline's events, so every command in it is answered in
the order it was sent.

Bounds, so that a bot in a thousand rooms never fetches without end:
- only to the previous sync's position (``to`` = its token): nothing handled before is fetched;
- only back to the cut-off (the catch-up window's edge or the bot's join, whichever is later):
  a timeline whose oldest event is already older needs no request at all;
- at most ``MAX_PAGES`` pages of ``PAGE_SIZE`` events per room, and ``PARALLEL`` rooms at once.

nio decrypts the ``m.room.encrypted`` events of a page when the bot holds the session's key.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, MessageDirection, RoomMessagesError
from nio.responses import Timeline

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 10
PARALLEL = 4
ATTEMPTS = 3


class GapNotFetched(Exception):
    """The homeserver would not give a gap's events: the batch is not completely handled."""


@dataclass(frozen=True)
class Gap:
    """The events of a room between the previous sync and a limited timeline."""

    room_id: str
    prev_batch: str  # where the timeline starts (paging backwards from here)
    since: str | None  # the previous sync's token; None for a first sync
    cutoff_ms: int  # older events are never answered


def timestamp(event: Any) -> int:
    value = getattr(event, "server_timestamp", None)
    if value is None:
        value = getattr(event, "source", {}).get("origin_server_ts", 0)
    return int(value)


def find_gap(room_id: str, timeline: Timeline, since: str | None, cutoff_ms: int) -> Gap | None:
    """The gap before a room's timeline, or None: not limited, or everything before the timeline
    is older than the cut-off (then no request is made)."""
    if not timeline.limited or not timeline.prev_batch:
        return None
    if timeline.events and timestamp(timeline.events[0]) < cutoff_ms:
        return None
    return Gap(room_id, timeline.prev_batch, since, cutoff_ms)


async def fetch_gap(
    client: AsyncClient,
    gap: Gap,
    event_filter: dict[str, Any],
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> list[Any]:
    """The gap's events, oldest first. Raises ``GapNotFetched`` when the homeserver refuses a
    page three times (nio has already retried time-outs and rate limits by then)."""
    newest_first: list[Any] = []
    start = gap.prev_batch
    for _ in range(max_pages):
        response = None
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(attempt)
            response = await client.room_messages(
                gap.room_id,
                start=start,
                end=gap.since,
                direction=MessageDirection.back,
                limit=page_size,
                message_filter=event_filter,
            )
            if not isinstance(response, RoomMessagesError):
                break
        if response is None or isinstance(response, RoomMessagesError):
            message = getattr(response, "message", response)
            raise GapNotFetched(f"messages of {gap.room_id} before {start}: {message}")
        fresh = [event for event in response.chunk if timestamp(event) >= gap.cutoff_ms]
        newest_first += fresh
        if len(fresh) < len(response.chunk) or not response.end or response.end == start:
            break  # at the cut-off, or at the previous sync's position
        start = response.end
    else:
        log.warning(
            "catch-up in %s stopped after %d events (%d pages); older commands there are not answered",
            gap.room_id,
            len(newest_first),
            max_pages,
        )
    newest_first.reverse()
    return newest_first


class CatchUp:
    """Fetches gaps for the rooms of a batch, ``PARALLEL`` rooms at a time."""

    def __init__(self, client: AsyncClient, event_filter: dict[str, Any], parallel: int = PARALLEL):
        self.client = client
        self.event_filter = event_filter
        self._gate = asyncio.Semaphore(parallel)

    async def fetch(self, gap: Gap) -> list[Any]:
        async with self._gate:
            events = await fetch_gap(self.client, gap, self.event_filter)
        if events:
            log.info("caught up %d event(s) in %s that the sync left out", len(events), gap.room_id)
        return events
