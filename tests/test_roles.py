"""Roles from the coordination room: power levels, and the creators of room version 12 rooms,
who hold unlimited power without an entry in the power levels."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from nio import RoomGetStateEventResponse

from bot.roles import (
    RoleResolver,
    creators_are_privileged,
    power_level,
    privileged_creators,
)
from commands.context import Role
from config.settings import Settings

ROOM = "!koordination"
STATUS = re.compile(r"schema.?version\W*\d+", re.IGNORECASE)  # what only a coordinator sees
LEAD, CO_LEAD, STAFF, MAYOR = "@leitung:x.org", "@vertretung:x.org", "@team:x.org", "@anna:x.org"


def create_event(version: str, sender: str = LEAD, **content: Any) -> dict[str, Any]:
    return {"type": "m.room.create", "sender": sender, "content": {"room_version": version, **content}}


def test_room_versions_whose_creators_are_privileged():
    assert creators_are_privileged("12") and creators_are_privileged("13")
    assert creators_are_privileged("org.matrix.hydra.11")
    for version in ("1", "10", "11", None, "", "org.example.custom"):
        assert not creators_are_privileged(version)


def test_creators_come_from_the_create_event_sender_and_additional_creators():
    event = create_event("12", additional_creators=[CO_LEAD, 7, None])
    assert privileged_creators(event) == {LEAD, CO_LEAD}
    assert privileged_creators(create_event("11", additional_creators=[CO_LEAD])) == frozenset()
    assert privileged_creators(create_event("12", additional_creators="@nicht:eine-liste")) == {LEAD}
    assert privileged_creators({"content": {}}) == frozenset()  # no version: version 1


def test_power_level_of_creators_levels_and_defaults():
    levels = {"users": {STAFF: 50, "@kaputt:x.org": "viel"}, "users_default": 10}
    assert power_level(LEAD, levels, frozenset({LEAD})) == math.inf
    assert power_level(STAFF, levels, frozenset({LEAD})) == 50
    assert power_level(MAYOR, levels) == 10
    assert power_level("@kaputt:x.org", levels) == 0
    assert power_level(LEAD, {}) == 0  # not a creator of a v12 room: nothing without an entry


@dataclass
class FakeHttpResponse:
    status: int
    body: Any

    async def json(self) -> Any:
        return self.body


@dataclass
class FakeClient:
    """The two state reads the resolver makes, answered from dictionaries, and counted."""

    create: dict[str, Any]
    levels: dict[str, Any]
    access_token: str = "token"
    reads: list[str] = field(default_factory=list)

    async def send(self, method: str, path: str, headers: dict[str, str] | None = None) -> FakeHttpResponse:
        assert method == "GET" and "/state/m.room.create/" in path and "format=event" in path
        self.reads.append("create")
        return FakeHttpResponse(200, self.create)

    async def room_get_state_event(self, room_id: str, event_type: str) -> RoomGetStateEventResponse:
        assert room_id == ROOM and event_type == "m.room.power_levels"
        self.reads.append("levels")
        return RoomGetStateEventResponse(self.levels, event_type, "", room_id)


def resolver(create: dict[str, Any], levels: dict[str, Any]) -> tuple[RoleResolver, FakeClient]:
    client = FakeClient(create, levels)
    settings = Settings(coordinators=["@gelistet:x.org"], coordination_room=ROOM)
    return RoleResolver(settings, client), client


async def test_creators_of_a_version_12_coordination_room_are_coordinators():
    roles, client = resolver(
        create_event("12", additional_creators=[CO_LEAD]), {"users": {STAFF: 50}, "users_default": 0}
    )
    assert await roles(LEAD) == Role.COORDINATOR
    assert await roles(CO_LEAD) == Role.COORDINATOR
    assert await roles(STAFF) == Role.COORDINATOR
    assert await roles(MAYOR) == Role.MEMBER
    assert await roles("@gelistet:x.org") == Role.COORDINATOR
    assert client.reads.count("create") == 1  # the creators never change: read once


@pytest.mark.parametrize("version", ["10", "11"])
async def test_creators_of_older_rooms_need_their_power_level(version):
    roles, _ = resolver(create_event(version), {"users": {STAFF: 50}})
    assert await roles(LEAD) == Role.MEMBER
    roles, _ = resolver(create_event(version), {"users": {LEAD: 100}})
    assert await roles(LEAD) == Role.COORDINATOR


async def test_unreadable_create_event_falls_back_to_power_levels_and_is_asked_again():
    roles, client = resolver(create_event("12"), {"users": {STAFF: 50}})

    async def refused(method: str, path: str, headers: dict[str, str] | None = None) -> FakeHttpResponse:
        client.reads.append("create")
        return FakeHttpResponse(403, {"errcode": "M_FORBIDDEN"})

    client.send = refused  # type: ignore[method-assign]
    assert await roles(LEAD) == Role.MEMBER
    assert await roles(STAFF) == Role.COORDINATOR
    assert client.reads.count("create") == 2


@pytest.mark.synapse
async def test_creator_of_a_version_12_coordination_room_is_a_coordinator(make_bot, make_user, synapse):
    """Synapse creates version 12 rooms: the creator of the coordination room has no entry in
    its power levels, is not listed in ``coordinators``, and is a coordinator all the same."""
    from tests.matrix_fixtures import unique

    lead, mayor = await make_user("leitung"), await make_user("mayor")
    account = synapse.register(unique("bot"))
    room = await lead.create_room([mayor.user_id, account.user_id], direct=False, name="Koordination")
    await mayor.join(room)
    assert (await lead.state(room, "m.room.create") or {}).get("room_version") == "12"
    assert lead.user_id not in (await lead.state(room, "m.room.power_levels") or {}).get("users", {})
    bot = await make_bot(account=account, coordination_room=room, coordinators=[])
    await lead.wait_joined(room, bot.user_id)

    allowed = await lead.ask(await lead.dm(bot.user_id), "!status")
    assert STATUS.search(allowed.body), allowed.body
    refused = await mayor.ask(await mayor.dm(bot.user_id), "!status")  # a member of the room
    assert not STATUS.search(refused.body) and "Koordinator" in refused.body
