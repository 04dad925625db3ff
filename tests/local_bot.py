"""A bot without a homeserver for fast tests: the real dispatcher, handlers and templates,
with ``bot.local.LocalMatrix`` as the homeserver stand-in and a clock the test can move."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import build_dispatcher, build_renderer, config_roles
from bot.local import LocalMatrix, SentMessage
from commands.context import Reply, Request, Role
from config.settings import Settings
from storage.database import Database


@dataclass
class FakeClock:
    current: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
        self.mono += seconds


class LocalBot:
    """``await bot.say("!ping")`` returns the messages the bot sent in answer."""

    def __init__(self, settings: Settings, db: Database, roles: dict[str, Role] | None = None):
        self.settings = settings
        self.db = db
        self.clock = FakeClock()
        self.renderer = build_renderer(settings)
        self.matrix = LocalMatrix(settings.user_id or "@bot:localhost", self.renderer)
        base = config_roles(settings)
        overrides = roles or {}

        async def role_of(user: str) -> Role:
            return overrides.get(user) or await base(user)

        self.dispatcher = build_dispatcher(settings, db, self.matrix, role_of, clock=self.clock)
        self.services = self.dispatcher.services
        self._ids = itertools.count(1)

    async def say(
        self,
        body: str,
        sender: str = "@buergermeisterin:localhost",
        room_id: str = "!dm:localhost",
        is_direct: bool = True,
        mentions_bot: bool = False,
        thread_root: str | None = None,
    ) -> list[SentMessage]:
        before = len(self.matrix.sent)
        request = Request(
            sender=sender,
            room_id=room_id,
            body=body,
            event_id=f"$ev{next(self._ids)}",
            thread_root=thread_root,
            timestamp_ms=int(self.clock.now().timestamp() * 1000),
            is_direct=is_direct,
            mentions_bot=mentions_bot,
        )

        async def send(reply: Reply) -> str | None:
            return await self.matrix.send(reply, request)

        await self.dispatcher.handle(request, send)
        return self.matrix.sent[before:]

    async def text(self, body: str, **kwargs: Any) -> str:
        """The plain bodies of the answer, joined."""
        return "\n".join(m.body for m in await self.say(body, **kwargs))


_template: Path | None = None


async def migrated_database(path: Path) -> Database:
    """A fully migrated database at ``path``, copied from one migrated once per test session
    (migrating loads the municipality register, which takes about half a second)."""
    global _template
    if _template is None:
        candidate = Path(tempfile.mkdtemp(prefix="kleinstadtbot-template-")) / "template.db"
        await (await Database(candidate).open()).close()
        _template = candidate
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template, path)
    return await Database(path).open()


async def make_local_bot(tmp_path: Path, roles: dict[str, Role] | None = None, **settings: Any) -> LocalBot:
    settings.setdefault("database", tmp_path / "bot.db")
    settings.setdefault("user_id", "@kleinstadtbot:localhost")
    settings.setdefault("coordinators", ["@koordination:localhost"])
    db = await migrated_database(Path(settings["database"]))
    return LocalBot(Settings(**settings), db, roles)
