"""The per-user rate limit through a real Synapse, with the README's settings (20 commands a
minute): 30 commands from one mayor in quick succession get 20 answers, one polite notice, then
silence until the window passes; another person in the same room is answered all the while.

The window is passed by moving the bot's monotonic clock on, not by waiting a minute, and no
assertion depends on how fast the homeserver is: a sent command, and everything before it in
the room, is known to be handled once the neighbour's later command is answered."""

from __future__ import annotations

import re
import time

import pytest

from commands.context import SystemClock
from tests.matrix_fixtures import assert_answers

pytestmark = pytest.mark.synapse

COMMAND, TOWN = "!berechtigt Bad Berleburg", "Bad Berleburg"


class MovableClock(SystemClock):
    """The system clock, whose monotonic time (the rate limit's) the test can move on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


async def test_thirty_commands_get_the_allowed_answers_one_notice_then_silence(make_bot, make_user):
    clock = MovableClock()
    bot = await make_bot(clock=clock)
    limit, window = bot.settings.rate_limit.commands, bot.settings.rate_limit.window_seconds
    mayor, neighbour = await make_user("mayor"), await make_user("nachbar")
    room = await mayor.create_room([bot.user_id, neighbour.user_id], direct=False, name="Runde")
    await neighbour.join(room)
    await mayor.wait_joined(room, bot.user_id)

    async def handled(event_id: str) -> list:
        """The bot's answers to ``event_id``, once the bot has certainly handled it: the
        neighbour's later command in the same room is answered, and a room is handled in order."""
        marker = await neighbour.ask(room, COMMAND)
        assert TOWN in marker.body  # the limit is per person
        return mayor.replies_to(room, event_id)

    start = time.monotonic()  # the window cannot begin before this
    commands = [await mayor.send(room, COMMAND) for _ in range(30)]
    await handled(commands[-1])
    answers = [mayor.replies_to(room, c) for c in commands]
    assert [len(a) for a in answers] == [1] * (limit + 1) + [0] * (30 - limit - 1)
    assert all(TOWN in a[0].body for a in answers[:limit])
    [notice] = answers[limit]
    assert_answers(notice, commands[limit], mayor.user_id)
    assert TOWN not in notice.body
    assert 1 <= int(re.search(r"\d+", notice.body).group()) <= window  # how long to wait

    # silence while the window lasts, also three quarters of it on, and no second notice
    assert await handled(await mayor.send(room, COMMAND)) == []
    clock.offset = max(clock.offset, start + 0.75 * window - time.monotonic())
    assert await handled(await mayor.send(room, COMMAND)) == []
    # once it has passed for every counted command, the mayor is answered again
    clock.offset += window
    [answer] = await handled(await mayor.send(room, COMMAND))
    assert TOWN in answer.body
    assert [e for e in mayor.notices(room, bot.user_id) if TOWN not in e.body] == [notice]
