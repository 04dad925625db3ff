"""Catch-up without a homeserver: which timelines have a gap, how it is paged, its bounds, and
that a room's gap is handled before its timeline (``bot.catch_up``, ``bot.routing``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from nio import MessageDirection, RoomMessagesError, RoomMessagesResponse, RoomMessageText, SyncResponse
from nio.responses import Timeline

import bot.catch_up as catch_up
from bot.batches import Batches
from bot.catch_up import CatchUp, Gap, GapNotFetched, fetch_gap, find_gap
from bot.routing import RoomWork, Router

ROOM = "!room:localhost"
FILTER = {"types": ["m.room.message", "m.room.encrypted"], "lazy_load_members": True}


def message(n: int, ts: int | None = None) -> RoomMessageText:
    return RoomMessageText.from_dict(
        {
            "type": "m.room.message",
            "sender": "@anna:localhost",
            "event_id": f"$e{n}",
            "origin_server_ts": 1000 + n if ts is None else ts,
            "content": {"msgtype": "m.text", "body": f"!ping {n}"},
        }
    )


@dataclass
class History:
    """``/messages`` backwards over events ``$e0`` … ``$e{count-1}``; tokens are positions, and
    ``to`` (the previous sync's token) is a position too. Pages starting at ``empty_pages`` come
    back with no events but an ``end`` (Synapse does that when a page was filtered away)."""

    count: int
    timestamps: dict[int, int] = field(default_factory=dict)
    empty_pages: set[str] = field(default_factory=set)
    errors: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def room_messages(self, room_id: str, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        assert kwargs["direction"] is MessageDirection.back and kwargs["message_filter"] == FILTER
        if self.errors:
            self.errors -= 1
            return RoomMessagesError("busy", "M_UNKNOWN")
        start = int(kwargs["start"])
        stop = int(kwargs["end"]) if kwargs["end"] is not None else 0
        first = max(stop, start - kwargs["limit"])
        if kwargs["start"] in self.empty_pages:  # its events were all filtered away
            return RoomMessagesResponse(room_id, [], kwargs["start"], str(first))
        chunk = [message(n, self.timestamps.get(n)) for n in range(start - 1, first - 1, -1)]
        return RoomMessagesResponse(room_id, chunk, kwargs["start"], str(first) if chunk else None)


def ids(events: list[Any]) -> list[str]:
    return [event.event_id for event in events]


def test_only_a_limited_timeline_with_fresh_events_has_a_gap():
    fresh = [message(5, ts=5000)]
    assert find_gap(ROOM, Timeline(fresh, False, "p"), "s1", 1000) is None  # not limited
    assert find_gap(ROOM, Timeline(fresh, True, None), "s1", 1000) is None  # nowhere to page from
    # the timeline starts before the cut-off: what lies before it is older still, no request
    assert find_gap(ROOM, Timeline(fresh, True, "p"), "s1", 6000) is None
    assert find_gap(ROOM, Timeline(fresh, True, "p"), "s1", 5000) == Gap(ROOM, "p", "s1", 5000)
    assert find_gap(ROOM, Timeline([], True, "p"), None, 5000) == Gap(ROOM, "p", None, 5000)


async def test_a_gap_is_paged_back_to_the_previous_sync_and_returned_oldest_first():
    history = History(count=30)
    events = await fetch_gap(history, Gap(ROOM, "30", "5", 0), FILTER, page_size=10)
    assert ids(events) == [f"$e{n}" for n in range(5, 30)]
    # the last request finds nothing more (Synapse's tokens say nothing of where the gap ends)
    assert [call["start"] for call in history.calls] == ["30", "20", "10", "5"]
    assert all(call["end"] == "5" for call in history.calls)  # never past the previous sync


async def test_paging_stops_at_the_cut_off():
    history = History(count=30, timestamps={n: 10 for n in range(0, 12)})  # $e0…$e11 are old
    events = await fetch_gap(history, Gap(ROOM, "30", None, 100), FILTER, page_size=10)
    assert ids(events) == [f"$e{n}" for n in range(12, 30)]
    assert len(history.calls) == 2  # the second page reached the cut-off


async def test_a_page_filtered_away_does_not_end_the_gap():
    history = History(count=30, empty_pages={"20"})
    events = await fetch_gap(history, Gap(ROOM, "30", "0", 0), FILTER, page_size=10)
    assert ids(events) == [f"$e{n}" for n in [*range(0, 10), *range(20, 30)]]


async def test_a_long_gap_stops_after_the_page_bound_keeping_the_newest(caplog):
    history = History(count=1000)
    with caplog.at_level(logging.WARNING, logger="bot.catch_up"):
        events = await fetch_gap(history, Gap(ROOM, "1000", None, 0), FILTER, page_size=10, max_pages=3)
    assert ids(events) == [f"$e{n}" for n in range(970, 1000)]
    assert len(history.calls) == 3
    assert any("older commands there are not answered" in r.getMessage() for r in caplog.records)


async def test_a_refused_page_is_asked_again_then_fails_the_gap(monkeypatch):
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(catch_up.asyncio, "sleep", no_wait)
    history = History(count=5, errors=2)
    assert ids(await fetch_gap(history, Gap(ROOM, "5", "0", 0), FILTER)) == [f"$e{n}" for n in range(5)]
    history = History(count=5, errors=catch_up.ATTEMPTS)
    with pytest.raises(GapNotFetched):
        await fetch_gap(history, Gap(ROOM, "5", "0", 0), FILTER)


async def test_only_a_few_rooms_fetch_at_once():
    running, most = 0, 0
    release = asyncio.Event()

    class Slow(History):
        async def room_messages(self, room_id: str, **kwargs: Any) -> Any:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
            return await super().room_messages(room_id, **kwargs)

    fetcher = CatchUp(Slow(count=3), FILTER, parallel=2)
    tasks = [asyncio.ensure_future(fetcher.fetch(Gap(f"!r{n}:x", "3", "0", 0))) for n in range(6)]
    for _ in range(50):  # every task has had its turn: two fetch, four wait
        await asyncio.sleep(0)
    assert most == 2
    release.set()
    assert [len(events) for events in await asyncio.gather(*tasks)] == [3] * 6


# --- the gap in a room's order -----------------------------------------------------------------


class Recorder:
    """Stands in for ``IncomingMessages``: records what would be answered, and whether the
    record of answered events was to be asked."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.checked: list[bool] = []

    def cutoff(self, room_id: str) -> int:
        return 0

    async def handle(self, room_id: str, event: Any, maybe_handled: bool = True) -> None:
        self.handled.append(event.event_id)
        self.checked.append(maybe_handled)


class FixedGap:
    def __init__(self, events: list[Any] | None) -> None:
        self.events = events

    async def fetch(self, gap: Gap) -> list[Any]:
        if self.events is None:
            raise GapNotFetched("refused")
        return self.events


def router(incoming: Recorder, gap: FixedGap) -> Router:
    return Router(None, None, incoming, gap, Batches(None))  # type: ignore[arg-type]


async def test_the_gap_is_handled_before_the_timeline_and_nothing_twice():
    incoming = Recorder()
    room = RoomWork(Gap(ROOM, "p", "s", 0), [message(3), message(4)])
    gap = [message(1), message(2), message(3)]  # $e3 also in the timeline (a replay overlap)
    await router(incoming, FixedGap(gap))._handle_room(ROOM, room, None)
    assert incoming.handled == ["$e1", "$e2", "$e3", "$e4"]


class Members:
    """Stands in for ``Membership``: the bot is in every room already."""

    def __contains__(self, room_id: object) -> bool:
        return True

    def is_new(self, room_id: str) -> bool:
        return False

    def is_dated(self, room_id: str) -> bool:
        return True

    def note(self, joined: dict[str, int], left: list[str]) -> None:
        pass

    async def record(self, joined: dict[str, int], left: list[str]) -> None:
        pass


class Tokens:
    async def save_sync_token(self, token: str) -> None:
        pass


async def test_only_a_process_s_first_batch_is_checked_against_answers_of_earlier_processes():
    """A batch asked for with the token of a batch this process routed holds only events that
    came after the process's first sync: nothing in it can have been answered before a crash,
    so the database's record is not read for it. The first batch, and one asked for with a token
    from elsewhere, may replay earlier answers and are checked."""
    incoming = Recorder()
    batches = Batches(Tokens())  # type: ignore[arg-type]
    routing = Router(Members(), None, incoming, FixedGap([]), batches)  # type: ignore[arg-type]

    def batch(token: str, n: int) -> SyncResponse:
        timeline = {"events": [message(n).source], "limited": False, "prev_batch": "p"}
        return SyncResponse.from_dict(
            {"next_batch": token, "rooms": {"join": {ROOM: {"timeline": timeline}}}}
        )

    for token, n, since in (("s2", 1, "s1"), ("s3", 2, "s2"), ("s4", 3, "s3"), ("s5", 4, "elsewhere")):
        routing.route(batch(token, n), since)
        await batches.drain(5)
    assert incoming.handled == ["$e1", "$e2", "$e3", "$e4"]
    assert incoming.checked == [True, False, False, True]


async def test_a_gap_that_cannot_be_fetched_still_answers_the_timeline_and_fails_the_room():
    incoming = Recorder()
    room = RoomWork(Gap(ROOM, "p", "s", 0), [message(3)])
    with pytest.raises(GapNotFetched):
        await router(incoming, FixedGap(None))._handle_room(ROOM, room, None)
    assert incoming.handled == ["$e3"]
