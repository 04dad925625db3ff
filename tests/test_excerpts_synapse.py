"""Module excerpts through a real Synapse: a coordinator plans them for a topic channel, and at
the due time (the bot's clock moved on, the engine run) the excerpt arrives in the channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.context import SystemClock
from tests.matrix_fixtures import assert_answers

pytestmark = pytest.mark.synapse


class ShiftedClock(SystemClock):
    """The system clock, moved on by ``shift`` (the engine reads due times from it)."""

    shift = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.shift


async def test_a_planned_excerpt_arrives_in_the_topic_channel(make_bot, make_user):
    coordinator = await make_user("koordination")
    clock = ShiftedClock()
    bot = await make_bot(coordinators=[coordinator.user_id], clock=clock)
    own = await coordinator.dm(bot.user_id)
    await coordinator.ask(own, "!thema anlegen Innenstadt", timeout=60)
    channel = (await bot.bot.db.fetchone("SELECT room_id FROM topic_channels"))["room_id"]
    await coordinator.join(channel)

    command = await coordinator.send(own, "!auszug planen Innenstadt wöchentlich dienstags 9 Uhr")
    planned = await coordinator.wait_reply(own, command)
    assert_answers(planned, command, coordinator.user_id)
    assert "Innenstadt" in planned.body and "Dienstag" in planned.body
    row = await bot.bot.db.fetchone("SELECT id, next_due FROM schedules WHERE kind = 'module_excerpt'")
    due = datetime.fromtimestamp(row["next_due"], UTC)
    assert due.astimezone(bot.settings.tz).strftime("%A %H:%M") == "Tuesday 09:00"

    # the due time comes: the engine delivers the first matching module into the channel
    clock.shift = due - datetime.now(UTC) + timedelta(seconds=30)
    schedules = bot.bot.dispatcher.services.schedules
    await schedules.run_due()
    await schedules.drain()
    excerpt = await coordinator.wait_notice(channel, lambda e: e.sender == bot.user_id and "📚" in e.body)
    content = excerpt.source["content"]
    assert content["msgtype"] == "m.notice" and "<strong>" in content["formatted_body"]
    assert "m.relates_to" not in content  # an announcement, not a reply
    states = await bot.bot.db.fetchall(
        "SELECT state, event_id FROM occurrences WHERE schedule_id = ?", (row["id"],)
    )
    assert [(s["state"], s["event_id"]) for s in states] == [("delivered", excerpt.event_id)]
