"""A first sync in parts of a few rooms (``bot.initial_sync``): one request split, or sliding-sync pages."""

from __future__ import annotations

import json
import random

import pytest
from nio import AsyncClient, SyncError, SyncResponse

from bot.initial_sync import (
    SHARED_KEYS,
    SLIDING_SYNC,
    SlidingPage,
    fetch_sliding_page,
    sliding_part,
    sliding_request,
    split_sync_response,
)


def room(index: int, messages: int = 2) -> dict:
    events = [
        {
            "type": "m.room.member",
            "state_key": "@bot:x",
            "sender": "@bot:x",
            "event_id": f"$m{index}",
            "origin_server_ts": 1000 + index,
            "content": {"membership": "join", "displayname": "Bot"},
        }
    ]
    events += [
        {
            "type": "m.room.message",
            "sender": "@ana:x",
            "event_id": f"$e{index}-{n}",
            "origin_server_ts": 2000 + n,
            "content": {"msgtype": "m.text", "body": f'!ping «{n}» "q"'},
        }
        for n in range(messages)
    ]
    return {
        "timeline": {"events": events, "limited": False, "prev_batch": f"p{index}"},
        "state": {"events": []},
        "summary": {"m.joined_member_count": 2},
    }


def sync_body(rooms: int, **extra) -> dict:
    return {
        "next_batch": "s72_1",
        "to_device": {"events": [{"type": "m.room_key", "sender": "@ana:x", "content": {"a": 1}}]},
        "device_lists": {"changed": ["@ana:x"], "left": []},
        "device_one_time_keys_count": {"signed_curve25519": 50},
        "device_unused_fallback_key_types": ["signed_curve25519"],
        "rooms": {
            "invite": {"!inv:x": {"invite_state": {"events": []}}},
            "join": {f"!r{i}:x": room(i) for i in range(rooms)},
            "leave": {"!gone:x": {"timeline": {"events": []}}},
        },
        **extra,
    }


def merged(parts: list[dict]) -> dict:
    """The parts put back together: joined rooms of every part, everything else from the first."""
    whole = {**parts[0], "rooms": {**parts[0]["rooms"], "join": {}}}
    for part in parts:
        whole["rooms"]["join"].update(part["rooms"]["join"])
    return whole


@pytest.mark.parametrize("rooms,per_part", [(0, 3), (1, 1), (7, 3), (7, 7), (7, 100), (25, 1)])
@pytest.mark.parametrize("indent", [None, 2])
def test_parts_hold_exactly_what_the_whole_response_holds(rooms, per_part, indent):
    body = sync_body(rooms)
    text = json.dumps(body, indent=indent, ensure_ascii=indent is None)
    parts = list(split_sync_response(text, per_part))
    assert len(parts) == max(1, -(-rooms // per_part))
    assert all(len(p["rooms"]["join"]) <= per_part for p in parts)
    assert merged(parts) == json.loads(text)
    # room order is kept, so events of the response are handled in the order the server gave
    assert [r for p in parts for r in p["rooms"]["join"]] == list(body["rooms"]["join"])


def test_only_the_first_part_carries_to_device_messages_device_lists_and_invites():
    parts = list(split_sync_response(json.dumps(sync_body(5)), 2))
    first, *rest = parts
    assert first["to_device"]["events"] and first["device_lists"]["changed"] == ["@ana:x"]
    assert set(first["rooms"]) == {"invite", "join", "leave"}
    for part in rest:
        assert set(part) == {*SHARED_KEYS, "rooms"}
        assert set(part["rooms"]) == {"join"}
        assert part["next_batch"] == "s72_1"
        assert part["device_one_time_keys_count"] == {"signed_curve25519": 50}


def test_every_part_is_a_valid_nio_sync_response():
    for part in split_sync_response(json.dumps(sync_body(5)), 2):
        response = SyncResponse.from_dict(part)
        assert isinstance(response, SyncResponse)
        assert response.next_batch == "s72_1"
        assert all(len(info.timeline.events) == 3 for info in response.rooms.join.values())


def test_key_order_whitespace_and_escapes_do_not_matter():
    body = sync_body(4)
    body["rooms"]["join"]['!qu"ote\\d:x'] = room(9)
    shuffled = dict(random.Random(7).sample(list(body.items()), len(body)))  # rooms first or last
    text = json.dumps(shuffled, separators=(" , ", " :\n "))
    text = "\n\t " + text.replace("{", "{ \r\n") + " \n"
    parts = list(split_sync_response(text, 2))
    assert merged(parts) == json.loads(text)
    assert '!qu"ote\\d:x' in merged(parts)["rooms"]["join"]


def test_rooms_with_events_the_bot_answers_come_first_in_the_servers_order():
    """The rooms whose commands wait are parsed (and answered) before the idle ones."""
    body = sync_body(7)
    busy = ["!r2:x", "!r5:x", "!r6:x"]
    for room_id, info in body["rooms"]["join"].items():
        if room_id not in busy:
            info["timeline"]["events"] = info["timeline"]["events"][:1]  # its join only
    # a type's name inside a text is escaped in JSON and does not make a room busy
    body["rooms"]["join"]["!r0:x"]["timeline"]["events"][0]["content"]["displayname"] = 'a "m.room.message"'
    text = json.dumps(body)
    parts = list(split_sync_response(text, 2, ["m.room.message", "m.room.encrypted"]))
    order = [r for p in parts for r in p["rooms"]["join"]]
    assert order == [*busy, "!r0:x", "!r1:x", "!r3:x", "!r4:x"]
    assert merged(parts) == json.loads(text)
    assert set(parts[0]) >= {"to_device", "device_lists"}  # the first part still carries the rest


def test_a_response_without_rooms_is_one_part_as_it_came():
    parts = list(split_sync_response(json.dumps({"next_batch": "s1", "to_device": {"events": []}})))
    assert parts == [{"next_batch": "s1", "to_device": {"events": []}}]


def test_an_error_body_comes_back_whole_and_nio_reads_it_as_an_error():
    text = json.dumps({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 1500})
    [part] = split_sync_response(text)
    assert part == json.loads(text)
    error = SyncResponse.from_dict(part)
    assert isinstance(error, SyncError) and error.retry_after_ms == 1500


def test_an_odd_shape_is_decoded_whole():
    text = json.dumps({"next_batch": "s1", "rooms": {"join": ["not", "an", "object"]}})
    assert list(split_sync_response(text)) == [json.loads(text)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '{"next_batch": "s1"',
        '{"a": 1} trailing',
        '{"rooms": {"join": {"!r:x": {"timeline": }}}}',
    ],
)
def test_what_is_not_a_json_object_is_refused(text):
    with pytest.raises(ValueError):
        list(split_sync_response(text))


def test_part_size_must_be_positive():
    with pytest.raises(ValueError):
        list(split_sync_response("{}", 0))


def sliding_room(index: int, initial: bool = True, bump: int = 0) -> dict:
    """A room of a sliding-sync page as Synapse sends it."""
    events = room(index)["timeline"]["events"]
    body = {
        "required_state": [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "sender": "@ana:x",
                "event_id": f"$c{index}",
                "origin_server_ts": 500,
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            },
        ],
        "timeline": events,
        "limited": True,
        "prev_batch": f"t{index}",
        "joined_count": 2,
        "invited_count": 0,
        "bump_stamp": bump,
    }
    if initial:
        body["initial"] = True
    return body


def test_a_sliding_page_becomes_a_sync_response_with_the_rooms_new_to_it_most_recent_first():
    invite_state = [
        {
            "type": "m.room.member",
            "state_key": "@bot:x",
            "sender": "@ana:x",
            "content": {"membership": "invite"},
        }
    ]
    answer = {
        "pos": "p2",
        "lists": {"rooms": {"count": 4}},
        "rooms": {
            "!old:x": sliding_room(1, bump=10),
            "!new:x": sliding_room(2, bump=30),
            "!seen:x": sliding_room(
                3, initial=False, bump=40
            ),  # sent before; the live syncs bring what changed
            "!invited:x": {"invite_state": invite_state, "bump_stamp": 20},
        },
    }
    part = sliding_part(answer, "p2")
    assert list(part["rooms"]["join"]) == ["!new:x", "!old:x"]
    assert part["rooms"]["invite"] == {"!invited:x": {"invite_state": {"events": invite_state}}}
    parsed = SyncResponse.from_dict(part)
    assert isinstance(parsed, SyncResponse) and parsed.next_batch == "p2"
    new = parsed.rooms.join["!new:x"]
    assert new.timeline.limited and new.timeline.prev_batch == "t2"  # the catch-up fetches the rest
    assert [e.event_id for e in new.timeline.events] == ["$m2", "$e2-0", "$e2-1"]
    assert [type(e).__name__ for e in new.state] == ["RoomEncryptionEvent"]
    assert new.summary.joined_member_count == 2 and new.summary.invited_member_count == 0
    assert list(parsed.rooms.invite) == ["!invited:x"]


def test_a_sliding_request_asks_for_the_bots_own_membership_and_lazy_members():
    body = sliding_request(49, 20, ["m.room.encryption", "m.room.member"])
    wanted = body["lists"]["rooms"]
    assert wanted["ranges"] == [[0, 49]] and wanted["timeline_limit"] == 20
    assert wanted["required_state"] == [
        ["m.room.encryption", ""],
        ["m.room.member", "$LAZY"],
        ["m.room.member", "$ME"],
    ]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, None),  # no sliding sync
        (405, "", None),
        (400, {"errcode": "M_UNRECOGNIZED", "error": "unknown"}, None),
        (400, {"errcode": "M_UNKNOWN_POS", "error": "Unknown position"}, "M_UNKNOWN_POS"),
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, "M_UNKNOWN_TOKEN"),
        (502, "<html>bad gateway</html>", "502"),
    ],
)
async def test_a_sliding_page_the_homeserver_refuses(status, body, expected):
    """No sliding sync at all is None (the first sync then comes in one request); any other
    refusal is the homeserver's error, for the back-off or a new position."""
    from aiohttp import web

    from tests.test_sending import serve

    async def sliding(request: web.Request) -> web.Response:
        if isinstance(body, dict):
            return web.json_response(body, status=status)
        return web.Response(text=body, status=status)

    async with serve(("POST", SLIDING_SYNC, sliding)) as url:
        client = AsyncClient(url, "@bot:x")
        client.access_token = "token"
        try:
            result = await fetch_sliding_page(client, sliding_request(9, 20, ["m.room.member"]), None)
        finally:
            await client.close()
    if expected is None:
        assert result is None
    else:
        assert isinstance(result, SyncError) and result.status_code == expected


async def test_pages_follow_the_connection_position():
    from aiohttp import web

    from tests.test_sending import serve

    seen: list[tuple[str | None, list]] = []

    async def sliding(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.query.get("pos"), body["lists"]["rooms"]["ranges"]))
        return web.json_response({"pos": f"p{len(seen)}", "lists": {"rooms": {"count": 7}}, "rooms": {}})

    async with serve(("POST", SLIDING_SYNC, sliding)) as url:
        client = AsyncClient(url, "@bot:x")
        client.access_token = "token"
        try:
            first = await fetch_sliding_page(client, sliding_request(4, 20, ["m.room.member"]), None)
            assert isinstance(first, SlidingPage) and first.position == "p1" and first.count == 7
            second = await fetch_sliding_page(
                client, sliding_request(9, 20, ["m.room.member"]), first.position
            )
        finally:
            await client.close()
    assert isinstance(second, SlidingPage) and second.position == "p2"
    assert seen == [(None, [[0, 4]]), ("p1", [[0, 9]])]
