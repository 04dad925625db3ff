"""The rooms the bot is in and since when; invitations; leaving rooms nobody else is in.

The time the bot came into a room (its invitation if the sync shows it, else its join) divides
history from messages meant for the bot: anything older is never answered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from nio import AsyncClient, InviteMemberEvent, RoomMemberEvent

from commands.context import Clock
from config.settings import Settings
from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)


class Membership:
    def __init__(self, client: AsyncClient, settings: Settings, repo: RuntimeStateRepository, clock: Clock):
        self.client = client
        self.settings = settings
        self.repo = repo
        self.clock = clock
        self.joins: dict[str, int] = {}  # room → since when its messages are meant for the bot
        self._accepted: dict[str, int] = {}  # rooms joined on invitation, until a sync dates it
        # During a first start (``bot.sync_loop``): rooms a live sync showed before the first
        # sync, running behind, dated the bot's join there. The bot was in them before the
        # live syncs began, so none of their live messages is history; their join time is
        # neither kept nor stored until the first sync tells it.
        self._undated: set[str] | None = None

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self.joins

    def __len__(self) -> int:
        return len(self.joins)

    def since(self, room_id: str) -> int:
        """Messages older than this (ms) came before the bot; 0 for a room not known yet."""
        return self.joins.get(room_id, 0)

    async def load(self) -> None:
        self.joins.update(await self.repo.all_joins())

    def begin_first_sync(self) -> None:
        """A first start: live syncs come before the first sync, which dates the joins."""
        self._undated = set()

    def end_first_sync(self) -> None:
        self._undated = None

    def is_new(self, room_id: str) -> bool:
        """Whether a sync showing the room should date the bot's join there."""
        return room_id not in self.joins or (self._undated is not None and room_id in self._undated)

    def is_dated(self, room_id: str) -> bool:
        """Whether the room's join time is known (and may be stored)."""
        return self._undated is None or room_id not in self._undated

    def join_time(self, room_id: str, info: Any, live: bool = True) -> int:
        """Since when the room's messages are meant for the bot: its invitation if the sync
        carries it (Element sends the first message of a new direct chat right after inviting),
        else its join, else now. Anything older is history and never answered. The bot's
        join→join member event (its name or avatar changed, as at a first start) is no join: it
        was in the room before, since a time the sync does not tell, so 0 (the catch-up window
        decides). During a first start, a live sync (``live``; not the first sync behind it)
        without the bot's join shows a room it was in before: 0, undated."""
        invited = joined = None
        earlier = False  # a join→join member event: in the room before it
        for event in [*info.state, *info.timeline.events]:
            if isinstance(event, RoomMemberEvent) and event.state_key == self.client.user_id:
                if event.membership == "invite":
                    invited = event.server_timestamp
                elif event.membership == "join" and event.prev_membership == "join":
                    earlier = True
                elif event.membership == "join":
                    joined = event.server_timestamp
        known = invited or self._accepted.pop(room_id, None) or joined
        if self._undated is not None:
            if known or earlier or not live:
                self._undated.discard(room_id)
            else:
                self._undated.add(room_id)
                return 0
        if known:
            return known
        return 0 if earlier else self._now_ms()

    def note(self, joined: dict[str, int], left: Iterable[str]) -> None:
        """What a sync batch says, applied at once (before its work runs)."""
        for room_id in left:
            self.joins.pop(room_id, None)
        self.joins.update(joined)

    async def record(self, joined: dict[str, int], left: Iterable[str]) -> None:
        """What a sync batch says, stored."""
        for room_id in left:
            await self.repo.forget_room(room_id)
        await self.repo.record_joins(joined)

    async def on_invite(self, room_id: str, info: Any) -> None:
        """Accept an invitation from a user of an allowed server, reject any other."""
        inviter = None
        for event in info.invite_state:
            if (
                isinstance(event, InviteMemberEvent)
                and event.state_key == self.client.user_id
                and event.membership == "invite"
            ):
                inviter = event.sender
        server = inviter.split(":", 1)[1] if inviter and ":" in inviter else None
        if server in self.settings.invite_servers:
            response = await self.client.join(room_id)
            if getattr(response, "room_id", None):
                # the next sync dates the invitation; this is the fallback if it cannot
                self._accepted[room_id] = self._now_ms()
                log.info("joined %s on invitation by %s", room_id, inviter)
            else:
                log.warning("could not join %s: %s", room_id, getattr(response, "message", response))
        else:
            log.info("rejecting invitation to %s from %s (server not allowed)", room_id, inviter)
            await self.client.room_leave(room_id)

    async def leave_if_empty(self, room_id: str) -> None:
        """With ``leave_empty_rooms``, leave and forget a room where nobody else is left."""
        if not self.settings.leave_empty_rooms:
            return
        room = self.client.rooms.get(room_id)
        if room is not None and room.joined_count <= 1 and room.invited_count == 0:
            log.info("leaving %s: no one else is left", room_id)
            await self.client.room_leave(room_id)
            await self.client.room_forget(room_id)
            self.joins.pop(room_id, None)
            await self.repo.forget_room(room_id)
