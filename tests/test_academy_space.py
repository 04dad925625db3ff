"""The academy Space is created once, even when two callers ask at the same moment."""

import asyncio

from commands.academy_space import ensure_space


async def test_concurrent_callers_create_one_space(local_bot):
    first, second = await asyncio.gather(ensure_space(local_bot.services), ensure_space(local_bot.services))
    spaces = [r for r in local_bot.matrix.rooms.values() if r.space]
    assert first == second
    assert [r.room_id for r in spaces] == [first]
    row = await local_bot.db.fetchone("SELECT room_id FROM academy_space")
    assert row[0] == first
