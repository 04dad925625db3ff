"""The first sync of a device without a stored token, taken in parts of a few rooms each.

Where the homeserver has simplified sliding sync (MSC4186; Synapse since 1.114), the rooms are
asked for in pages of ``ROOMS_PER_PAGE`` (``fetch_sliding_page``): each page costs the homeserver
in proportion to its rooms (a tenth of a second for 50 rooms, where a first sync of 1,000 rooms
takes it seconds in one piece, and everything else the bot asks for waits behind it), and each
page comes back as a part in the shape of a sync response (``sliding_part``). The range grows
from the first room on one connection position, so a room whose new activity moves it to the
front while the pages are taken is sent all the same. Otherwise the first sync is one request:

A first sync answers for every room the bot is in at once: for 1,000 rooms over a megabyte of
JSON, which ``json.loads`` turns into about ten times as much in Python objects. nio would parse
and keep that in one piece, and Python gives such a burst back to the operating system only
in part. Here the response body is read as text and split at the level of joined rooms: each
part holds a hundred rooms and is parsed, handed to nio and dispatched before the next is
parsed, so the peak is one part's worth whatever the number of rooms.

Rooms whose text names an event type the bot answers (a message, say) come first, so their
commands are answered before the rooms with nothing to handle are parsed; otherwise the
server's order is kept.

Splitting uses the standard library's decoder (``JSONDecoder.raw_decode``) on values in place:
the top-level object and ``rooms``/``join`` are walked member by member; every other value is
decoded as a whole. Each joined room is decoded twice (once to find where it ends, once when its
part is built), which costs milliseconds against the seconds a homeserver needs for the sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from nio import AsyncClient, SyncError

ROOMS_PER_PART = 100
ROOMS_PER_PAGE = 50  # rooms per sliding-sync page
SLIDING_SYNC = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
# answers of a homeserver without sliding sync (the endpoint unknown, or not this method)
NO_SLIDING = {404, 405}
# Keys every part carries: the token, and the key counts nio checks after each sync response.
SHARED_KEYS = ("next_batch", "device_one_time_keys_count", "device_unused_fallback_key_types")

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Reader:
    """A position in a JSON text, read one value or object member at a time."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.pos)
        assert match is not None  # the pattern also matches nothing
        self.pos = match.end()

    def expect(self, char: str) -> None:
        self.skip()
        if not self.text.startswith(char, self.pos):
            raise ValueError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def value(self) -> Any:
        self.skip()
        value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        return value

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here. After each key the position is at its value,
        which the caller must read (``value``, ``members`` or ``value_start``) before going on."""
        self.expect("{")
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise ValueError(f"object key expected at offset {self.pos}")
            self.expect(":")
            yield key
            self.skip()
            char = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if char == "}":
                return
            if char != ",":
                raise ValueError(f"',' or '}}' expected at offset {self.pos - 1}")

    def value_start(self) -> int:
        """Where the value at the current position starts; reads past it."""
        self.skip()
        start = self.pos
        self.value()
        return start

    def at_end(self) -> bool:
        self.skip()
        return self.pos == len(self.text)


def split_sync_response(
    text: str, rooms_per_part: int = ROOMS_PER_PART, busy_types: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """The sync response ``text`` as sync responses of at most ``rooms_per_part`` joined rooms.

    The first part carries everything that is not a joined room (to-device messages, device
    lists, invites, left rooms …); every part carries the token and the one-time key counts.
    Together the parts hold exactly what ``json.loads(text)`` would. A text that is not an
    object of that shape (an error body, say) comes back whole, as one part.

    Joined rooms whose text holds one of ``busy_types`` as a JSON string (an event type) come
    first, in the server's order, then the others in the server's order."""
    if rooms_per_part < 1:
        raise ValueError("rooms_per_part must be at least 1")
    reader = _Reader(text)
    top: dict[str, Any] = {}
    rooms: dict[str, Any] = {}
    joined: list[tuple[str, int]] = []
    idle: list[tuple[str, int]] = []
    markers = [json.dumps(event_type) for event_type in busy_types]
    has_rooms = False
    try:
        for key in reader.members():
            if key != "rooms":
                top[key] = reader.value()
                continue
            has_rooms = True
            for section in reader.members():
                if section != "join":
                    rooms[section] = reader.value()
                    continue
                for room_id in reader.members():
                    start = reader.value_start()
                    busy = not markers or any(text.find(m, start, reader.pos) >= 0 for m in markers)
                    (joined if busy else idle).append((room_id, start))
        if not reader.at_end():
            raise ValueError(f"unexpected data at offset {reader.pos}")
    except ValueError:  # not the usual shape: decode it whole (or fail as json does)
        whole = json.loads(text)
        if not isinstance(whole, dict):
            raise ValueError("a sync response must be a JSON object") from None
        yield whole
        return
    if not has_rooms:  # nothing to split (an error body, say): as it came
        yield top
        return
    joined += idle
    shared = {key: top[key] for key in SHARED_KEYS if key in top}
    for start in range(0, max(len(joined), 1), rooms_per_part):
        join = {
            room_id: _DECODER.raw_decode(text, offset)[0]
            for room_id, offset in joined[start : start + rooms_per_part]
        }
        if start == 0:
            yield {**top, "rooms": {**rooms, "join": join}}
        else:
            yield {**shared, "rooms": {"join": join}}


async def fetch_initial_sync(client: AsyncClient, sync_filter: dict[str, Any]) -> str | SyncError:
    """The body of a first sync (no ``since``) as text, or the homeserver's error.

    Requested like nio's own ``sync`` (access token in the header, no client-side time limit:
    a first sync of a large account can take the server a while). Connection errors and time-outs
    are raised for the caller's back-off, as from ``AsyncClient.sync``."""
    query = urlencode({"timeout": "0", "filter": json.dumps(sync_filter, separators=(",", ":"))})
    response = await client.send(
        "GET",
        f"/_matrix/client/v3/sync?{query}",
        headers={"Authorization": f"Bearer {client.access_token}"},
        timeout=0,
    )
    async with response:
        text = await response.text()
        if response.status == 200:
            return text
    return refusal(response.status, _json(text))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def refusal(status: int, body: Any) -> SyncError:
    """The homeserver's error for a refused sync request, or its HTTP status without one."""
    if not isinstance(body, dict) or not body.get("errcode"):
        return SyncError(f"HTTP {status} without a Matrix error body", str(status))
    return SyncError.from_dict(body)


@dataclass(frozen=True)
class SlidingPage:
    """One page of a first sync through sliding sync: the rooms new to it, as a sync response."""

    part: dict[str, Any]  # the shape ``SyncResponse.from_dict`` takes
    position: str  # the connection's position, for the next page
    count: int  # the rooms in the list (joined and invited) on the homeserver now


def sliding_request(end: int, timeline_limit: int, state_types: Sequence[str]) -> dict[str, Any]:
    """The list of the bot's rooms, most recent first, up to ``end`` (inclusive), with the
    state the bot needs (``state_types``, members lazy-loaded, its own membership) and a
    timeline of ``timeline_limit`` events."""
    required = [[event_type, ""] for event_type in state_types if event_type != "m.room.member"]
    if "m.room.member" in state_types:
        required += [["m.room.member", "$LAZY"], ["m.room.member", "$ME"]]
    return {
        "lists": {
            "rooms": {"ranges": [[0, end]], "timeline_limit": timeline_limit, "required_state": required}
        }
    }


def sliding_part(answer: dict[str, Any], token: str) -> dict[str, Any]:
    """The rooms a sliding-sync page sends for the first time, in the shape of a sync response:
    joined rooms with their state, timeline (``limited`` and ``prev_batch`` for the catch-up)
    and member counts, most recent first; invitations with their stripped state. Rooms the page
    sends again with what changed since the last page are left out: the live syncs bring that."""
    join: dict[str, Any] = {}
    invite: dict[str, Any] = {}
    rooms = answer.get("rooms") or {}
    for room_id in sorted(rooms, key=lambda r: -int(rooms[r].get("bump_stamp") or 0)):
        room = rooms[room_id]
        if "invite_state" in room:
            invite[room_id] = {"invite_state": {"events": room["invite_state"]}}
            continue
        if not room.get("initial"):
            continue
        timeline: dict[str, Any] = {"events": room.get("timeline", []), "limited": bool(room.get("limited"))}
        if room.get("prev_batch"):
            timeline["prev_batch"] = room["prev_batch"]
        summary = {
            key: room[field]
            for key, field in (
                ("m.joined_member_count", "joined_count"),
                ("m.invited_member_count", "invited_count"),
            )
            if isinstance(room.get(field), int)
        }
        join[room_id] = {
            "state": {"events": room.get("required_state", [])},
            "timeline": timeline,
            "summary": summary,
        }
    return {"next_batch": token, "rooms": {"join": join, "invite": invite}}


async def fetch_sliding_page(
    client: AsyncClient, body: dict[str, Any], position: str | None
) -> SlidingPage | SyncError | None:
    """A page of the first sync through sliding sync (``body``: ``sliding_request``), from the
    connection's ``position`` (None for the first page); None if the homeserver has no sliding
    sync. Connection errors and time-outs are raised, as from ``fetch_initial_sync``."""
    query = urlencode({"timeout": "0", **({"pos": position} if position else {})})
    response = await client.send(
        "POST",
        f"{SLIDING_SYNC}?{query}",
        json.dumps(body),
        headers={"Authorization": f"Bearer {client.access_token}", "Content-Type": "application/json"},
        timeout=0,
    )
    async with response:
        text = await response.text()
        status = response.status
    answer = _json(text)
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("pos"), str):
        count = ((answer.get("lists") or {}).get("rooms") or {}).get("count")
        return SlidingPage(sliding_part(answer, answer["pos"]), answer["pos"], int(count or 0))
    refused = refusal(status, answer)
    return None if status in NO_SLIDING or refused.status_code == "M_UNRECOGNIZED" else refused
