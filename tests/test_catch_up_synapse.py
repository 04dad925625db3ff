"""Catch-up after downtime through real Synapse: the gap of a limited timeline is fetched.

A sync returns at most ``sync.timeline_limit`` (20) events per room; with more waiting, the
timeline is ``limited`` and the older ones must be fetched with ``/messages``.
"""

from __future__ import annotations

import pytest

from tests.answer_checks import answered, settle

pytestmark = pytest.mark.synapse


async def test_thirty_three_commands_sent_while_down_are_each_answered_once_in_order(make_bot, make_user):
    """Three mayors in one group room (each under the per-user rate limit), default settings."""
    bot = await make_bot()
    mayors = [await make_user("mayor") for _ in range(3)]
    room = await mayors[0].create_room(
        [bot.user_id, mayors[1].user_id, mayors[2].user_id], direct=False, name="Runde"
    )
    for other in mayors[1:]:
        await other.client.join(room)
    await mayors[0].wait_joined(room, bot.user_id)
    await mayors[0].ask(room, "!ping")
    await bot.stop()
    commands = [await mayors[n % 3].send(room, "!ping") for n in range(33)]
    again = await make_bot(account=bot.account)
    await settle(mayors[0], room)
    assert answered(mayors[0], room, bot.user_id, commands) == commands
    assert again.bot.client.device_id == bot.bot.client.device_id


async def test_encrypted_commands_in_the_gap_are_decrypted_and_answered(make_bot, make_user):
    """One mayor, 30 encrypted commands; the rate limit is lifted so that all 30 are due (by
    default the 21st command within a minute gets a notice and the rest silence, by design)."""
    bot = await make_bot(rate_limit={"commands": 1000})
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    await mayor.ask(room, "!ping")
    await bot.stop()
    commands = [await mayor.send(room, "!ping") for _ in range(30)]
    await make_bot(account=bot.account, rate_limit={"commands": 1000})
    await settle(mayor, room)
    assert answered(mayor, room, bot.user_id, commands) == commands
    assert all(e.decrypted for e in mayor.notices(room, sender=bot.user_id))
