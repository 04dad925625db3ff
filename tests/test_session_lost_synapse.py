"""The bot's session signed out while it answers, through real Synapse: every command of a
mayor who sent 30 at once is answered exactly once after the bot has logged in again (no answer
lost to the dead token, none twice from the replay)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.matrix_fixtures import assert_answers, sign_out

pytestmark = pytest.mark.synapse


async def _until(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def test_commands_waiting_when_the_session_is_signed_out_are_answered_once_after_the_new_login(
    make_bot, make_user, synapse
):
    bot = await make_bot(rate_limit={"commands": 1000}, sync={"timeout_ms": 1000})
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    await mayor.ask(room, "!ping")
    client = bot.bot.client
    device, token = client.device_id, client.access_token
    assert device is not None and token is not None
    room_send = client.room_send
    signed_out = asyncio.Event()

    async def send_after_signing_out(*args: Any, **kwargs: Any) -> Any:
        # the first answer after the commands arrived: the session is signed out just before
        if not signed_out.is_set():
            signed_out.set()
            await sign_out(synapse.url, bot.user_id, device, token)
        return await room_send(*args, **kwargs)

    commands: list[str] = []

    async def first_command_settled() -> bool:
        """The bot is done with the first command: answered, given up on, or left (its room's
        work for the batch ended)."""
        router = bot.bot.sync.router
        return bool(commands) and (
            await bot.bot.repo.is_handled(commands[0]) or room not in router._room_tails
        )

    login = client.login

    async def login_once_the_first_command_is_settled(*args: Any, **kwargs: Any) -> Any:
        # a new login that comes quickly would let a retry of the refused send through with the
        # new token; held here, the bot must bring the command back itself
        await _until(first_command_settled, "the bot never finished with the first command")
        return await login(*args, **kwargs)

    client.room_send = send_after_signing_out  # type: ignore[method-assign]
    client.login = login_once_the_first_command_is_settled  # type: ignore[method-assign]
    for _ in range(30):
        commands.append(await mayor.send(room, "!ping"))
    await asyncio.wait_for(signed_out.wait(), 60)
    for command in commands:
        answer = await mayor.wait_reply(room, command, timeout=120)
        assert_answers(answer, command, mayor.user_id)
    assert client.access_token != token and not bot.task.done()  # a new login, still running
    # one more command: its answer comes after any second answer a replay would have posted
    last = await mayor.send(room, "!ping")
    await mayor.wait_reply(room, last)
    for command in commands:
        replies = mayor.replies_to(room, command)
        assert len(replies) == 1, (command, [r.body for r in replies])
        assert replies[0].body.startswith("🏓")  # the answer, not the error notice
