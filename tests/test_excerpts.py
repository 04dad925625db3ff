"""Module excerpts in topic channels on a schedule: no repeats until every matching module was
shown, list and cancel, refusals with examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commands.faq_search import library
from tests.local_bot import make_local_bot
from tests.test_checkins import run_until
from tests.test_tandems import COORD

ANNA = "@anna:localhost"


@pytest.fixture
async def bot(tmp_path):
    local = await make_local_bot(tmp_path)
    local.clock.current = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    await local.say("!thema anlegen Innenstadt", sender=COORD)
    yield local
    await local.db.close()


def channel_room(bot) -> str:
    [room] = [r.room_id for r in bot.matrix.rooms.values() if r.name.startswith("Innenstadt")]
    return room


def excerpts(bot) -> list:
    return [m for m in bot.matrix.sent if m.reply.template == "module_excerpt"]


async def test_each_matching_module_once_then_again_from_the_start(bot):
    planned = await bot.text("!auszug planen Innenstadt wöchentlich dienstags 9 Uhr", sender=COORD)
    assert "Innenstadt" in planned and "jeden Dienstag um 09:00 Uhr" in planned
    modules = [m.id for m in (await library(bot.services)).modules("de") if "innenstadt" in m.topics]
    assert len(modules) >= 2
    weeks = len(modules) + 1
    await run_until(bot, datetime(2026, 12, 2 + 7 * weeks, tzinfo=UTC))
    posted = [m.reply.data["module"]["id"] for m in excerpts(bot)]
    assert len(posted) == weeks
    assert sorted(posted[: len(modules)]) == sorted(modules)  # no repeats before all were shown
    assert posted[len(modules)] == posted[0]  # then it starts over
    assert {m.room_id for m in excerpts(bot)} == {channel_room(bot)}
    assert all(m.reply.key.startswith("module_excerpt-") for m in excerpts(bot))


async def test_list_and_cancel(bot):
    await bot.say("!auszug planen Innenstadt every 2 weeks thursday 14:00", sender=COORD)
    listing = await bot.text("!auszug liste", sender=COORD)
    assert "Nr. 1: Innenstadt" in listing and "Donnerstag" in listing
    assert "beendet" in await bot.text("!auszug stoppen 1", sender=COORD)
    await run_until(bot, datetime(2027, 1, 15, tzinfo=UTC))
    assert excerpts(bot) == []
    assert "keine Auszüge" in await bot.text("!auszug liste", sender=COORD)
    assert "Nummer 1" in await bot.text("!auszug stoppen 1", sender=COORD)


async def test_refusals_say_what_was_wrong_and_show_an_example(bot):
    unknown = await bot.text("!auszug planen Nirgendwo wöchentlich dienstags 9 Uhr", sender=COORD)
    assert "„Nirgendwo“" in unknown and "Innenstadt" in unknown and "!auszug planen" in unknown
    unreadable = await bot.text("!auszug planen Innenstadt manchmal", sender=COORD)
    assert "„manchmal“" in unreadable and "wöchentlich dienstags 9 Uhr" in unreadable
    assert await bot.db.fetchone("SELECT 1 FROM schedules WHERE kind = 'module_excerpt'") is None
    # members may not plan
    assert "Koordination" in await bot.text(
        "!auszug planen Innenstadt wöchentlich dienstags 9 Uhr", sender=ANNA
    )


async def test_in_the_channel_itself_the_words_are_the_rhythm(bot):
    room = channel_room(bot)
    planned = await bot.text(
        "!auszug planen monatlich am ersten Montag 9:30", sender=COORD, room_id=room, is_direct=False
    )
    assert "jeden Monat am ersten Montag um 09:30 Uhr" in planned
