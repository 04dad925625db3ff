"""Rooms the bot creates, by room version, through real Synapse (default room version 12).

In version 12 rooms the creator holds unlimited power and must not be listed in the power
levels (Synapse refuses the room otherwise); in older versions the creator must be listed, or
it would have no power in its own room. The bot asks the homeserver's default version
(``/capabilities``); when it cannot learn it, it falls back to listing itself, and when the
homeserver refuses that for a creator with unlimited power, it creates the room without.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientConnectionError

pytestmark = pytest.mark.synapse


async def _levels_and_version(user: Any, room_id: str) -> tuple[dict[str, int], str]:
    levels = (await user.client.room_get_state_event(room_id, "m.room.power_levels")).content
    create = (await user.client.room_get_state_event(room_id, "m.room.create")).content
    return levels.get("users", {}), create.get("room_version", "1")


@pytest.mark.parametrize(
    "version,bot_listed",
    [(None, False), ("12", False), ("11", True), ("10", True)],
)
async def test_the_bot_is_listed_in_the_power_levels_only_where_the_version_needs_it(
    make_bot, make_user, version, bot_listed
):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room_id = await bot.bot.matrix.create_room(
        name="Tandem",
        invite=[mayor.user_id],
        power_levels={"users": {bot.user_id: 100, mayor.user_id: 50}},
        room_version=version,
    )
    await mayor.client.join(room_id)
    users, actual = await _levels_and_version(mayor, room_id)
    assert actual == (version or "12")
    assert (bot.user_id in users) is bot_listed
    assert users[mayor.user_id] == 50
    # either way the bot holds the power to change the room
    await bot.bot.matrix.put_state(room_id, "m.room.topic", {"topic": "Innenstadt"})


async def test_without_the_default_version_the_bot_still_creates_a_room_on_a_version_12_server(
    make_bot, make_user
):
    """``/capabilities`` cannot be read (an old or odd server, a proxy that blocks it): the bot
    first assumes an older version and lists itself; Synapse refuses that for a version 12
    room, so the bot creates it again without the entry."""
    bot = await make_bot()
    mayor = await make_user("mayor")
    client = bot.bot.client
    real_send = client.send

    async def send(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if "/capabilities" in path:
            raise ClientConnectionError("capabilities blocked")
        return await real_send(method, path, *args, **kwargs)

    client.send = send  # type: ignore[method-assign]
    try:
        room_id = await bot.bot.matrix.create_room(
            name="Themenkanal",
            invite=[mayor.user_id],
            power_levels={"users": {bot.user_id: 100, mayor.user_id: 50}},
        )
    finally:
        client.send = real_send  # type: ignore[method-assign]
    await mayor.client.join(room_id)
    users, actual = await _levels_and_version(mayor, room_id)
    assert actual == "12" and bot.user_id not in users and users[mayor.user_id] == 50
    await bot.bot.matrix.put_state(room_id, "m.room.topic", {"topic": "Wohnen"})
