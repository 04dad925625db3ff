"""The academy Space: found or created at startup, and every bot-made room added as its child.

``settings.space`` may name an existing Space by alias (``#akademie:example.org``) or room ID;
without it (or if the alias does not resolve) the bot uses the Space it recorded earlier or
creates one named ``settings.space_name`` and records it, so a restart never makes a second one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from commands.context import MatrixError, Services
from commands.registry import on_startup
from config.catalogs import N_, translate
from storage.community import SpaceRepository

log = logging.getLogger(__name__)
CACHE_KEY = "academy_space"


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def room_power_levels(
    services: Services, extra: dict[str, int] | None = None, requester: str | None = None
) -> dict[str, Any]:
    """Power levels for bot-made rooms: bot and coordinators 100, ``extra`` as given."""
    users: dict[str, int] = dict(extra or {})
    for coordinator in services.settings.coordinators:
        users[coordinator] = 100
    if requester:
        users[requester] = 100
    users[services.matrix.user_id] = 100
    return {"users": users}


async def ensure_space(services: Services) -> str:
    """The academy Space's room ID: configured, recorded, or newly created (and recorded).

    Serialised: the startup hook and a first ``!tandem anlegen`` may ask at the same moment,
    and only one of them may create the Space."""
    cached = services.cache.get(CACHE_KEY)
    if cached:
        return cached
    async with services.cache.setdefault(CACHE_KEY + ".lock", asyncio.Lock()):
        return services.cache.get(CACHE_KEY) or await _find_or_create_space(services)


async def _find_or_create_space(services: Services) -> str:
    repo = SpaceRepository(services.db)
    configured = services.settings.space
    room_id: str | None = None
    if configured:
        if configured.startswith("#"):
            room_id = await services.matrix.resolve_alias(configured)
            if room_id is None:
                log.warning("academy Space alias %s does not resolve; using or creating one", configured)
        else:
            room_id = configured
        if room_id:
            record = await repo.get()
            if record is None or record.room_id != room_id:
                await repo.record(
                    room_id, configured=configured, created_by_bot=False, now=services.clock.now()
                )
    if room_id is None:
        record = await repo.get()
        if record is not None:
            room_id = record.room_id
    if room_id is None:
        room_id = await services.matrix.create_room(
            name=services.settings.space_name,
            topic=translate(services.settings.locale, N_("Räume und Tandems der Kleinstadtakademie")),
            space=True,
            preset="private_chat",
            power_levels=room_power_levels(services),
            txn_key="academy-space",
        )
        await repo.record(room_id, configured=configured, created_by_bot=True, now=services.clock.now())
        log.info("created the academy Space %s", room_id)
    services.cache[CACHE_KEY] = room_id
    return room_id


def parent_state(space_id: str, via: str) -> dict[str, Any]:
    """The ``m.space.parent`` initial-state event for a new child room."""
    return {"type": "m.space.parent", "state_key": space_id, "content": {"via": [via], "canonical": True}}


async def add_child(services: Services, room_id: str, space_id: str | None = None) -> str:
    """Make ``room_id`` a child of the academy Space (both directions). Returns the Space ID."""
    space_id = space_id or await ensure_space(services)
    via = server_of(services.matrix.user_id)
    await services.matrix.put_state(
        space_id, "m.space.child", {"via": [via], "suggested": False}, state_key=room_id
    )
    existing = await services.matrix.get_state(room_id, "m.space.parent", state_key=space_id)
    if not existing:
        await services.matrix.put_state(
            room_id, "m.space.parent", {"via": [via], "canonical": True}, state_key=space_id
        )
    return space_id


async def invite_to_space(services: Services, user_id: str) -> bool:
    """Invite ``user_id`` to the academy Space unless they are in it already; True if invited.

    Members of the Space see every topic channel in their client and can join the restricted
    ones themselves. A failure is logged, never shown: the profile matters more than the invite."""
    try:
        space_id = await ensure_space(services)
        if user_id in await services.matrix.joined_members(space_id):
            return False
        await services.matrix.invite(space_id, user_id)
    except MatrixError as exc:
        log.warning("could not invite %s to the academy Space: %s", user_id, exc)
        return False
    return True


async def remove_child(services: Services, room_id: str) -> None:
    """Take ``room_id`` out of the Space (used when cleaning up a half-made room)."""
    space_id = services.cache.get(CACHE_KEY)
    if not space_id:
        return
    try:
        await services.matrix.put_state(space_id, "m.space.child", {}, state_key=room_id)
    except MatrixError:
        log.warning("could not remove %s from the Space", room_id)


@on_startup
async def _ensure_space_at_startup(services: Services) -> None:
    try:
        await ensure_space(services)
    except MatrixError as exc:  # the bot still answers; room commands retry on use
        log.error("could not find or create the academy Space: %s", exc)
