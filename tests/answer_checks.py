"""Checks on the bot's answers as a user's client sees them, for tests through real Synapse.

"No duplicate" is only provable once any late duplicate would have arrived: ``settle`` sends a
marker command and waits for its answer. The bot answers the events of a room in order, so a
duplicate answer to anything sent before the marker reaches the room before the marker's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.matrix_fixtures import WAIT, UserClient


def reply_target(event: Any) -> str | None:
    """The event a notice answers (its ``m.in_reply_to``)."""
    relates = event.source.get("content", {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


async def settle(user: UserClient, room_id: str, timeout: float = WAIT) -> str:
    """Send ``!ping`` and wait for its answer; returns the marker's event ID."""
    marker = await user.send(room_id, "!ping")
    await user.wait_reply(room_id, marker, timeout)
    return marker


def answered(user: UserClient, room_id: str, bot_user: str, commands: list[str]) -> list[str]:
    """Which of ``commands`` the bot answered, one entry per answer, in the room's order."""
    wanted = set(commands)
    targets = (reply_target(e) for e in user.notices(room_id, sender=bot_user))
    return [target for target in targets if target in wanted]


async def wait_answered(
    user: UserClient, room_id: str, bot_user: str, commands: list[str], at_least: int, timeout: float = WAIT
) -> None:
    """Wait until the bot has answered ``at_least`` of ``commands`` (whichever they are)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(set(answered(user, room_id, bot_user, commands))) < at_least:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"fewer than {at_least} of {len(commands)} commands answered")
        await asyncio.sleep(0.1)


async def answers_in_room(user: UserClient, room_id: str, command: str, pages: int = 10) -> int:
    """How many answers to ``command`` the room holds on the homeserver (``/messages``, newest
    first), whatever the user's client has seen: tells a lost answer from one a client missed."""
    count, start = 0, None
    for _ in range(pages):
        response = await user.client.room_messages(room_id, start=start, limit=100)
        chunk = getattr(response, "chunk", [])
        count += sum(1 for event in chunk if reply_target(event) == command)
        start = getattr(response, "end", None)
        if not chunk or not start:
            break
    return count


async def wait_reply_or_say_why(user: UserClient, room_id: str, command: str, bot: Any) -> Any:
    """The bot's answer to ``command`` as ``user``'s client sees it; if none comes, a failure
    that says which side lost it: the bot's record of answered events (``bot``: the running
    ``KleinstadtBot``) and the answers the room holds on the homeserver."""
    try:
        return await user.wait_reply(room_id, command)
    except TimeoutError:
        recorded = await bot.repo.is_handled(command)
        stored = await answers_in_room(user, room_id, command)
        raise AssertionError(
            f"no answer to {command} in {room_id} reached the client; the bot "
            f"{'recorded it as answered' if recorded else 'has no record of answering it'}; "
            f"the room on the homeserver holds {stored} answer(s) to it"
        ) from None
