"""The encrypted nio floor for ``bench/peers.sh``: the least an nio bot with encryption costs.

A bare ``nio.AsyncClient`` with encryption on and its store in ``DATA_DIR`` (as kleinstadtbot
runs in production), the default ``sync_forever`` without a filter, answering every message
that starts with ``!`` and arrived after its start with an ``m.notice`` of the same text. It
imports nothing but nio, so its memory is the interpreter, aiohttp, nio and its encryption.

With ``--stack`` it is the floor of a bot built on the project's stack (the developers' guide:
pydantic-settings, aiosqlite, Jinja2 with gettext catalogs, Babel; APScheduler): before it
syncs it reads a settings model with pydantic-settings and opens a SQLite database with
aiosqlite; each reply is rendered by a Jinja2 template with the i18n extension and a figure
formatted by Babel, and the command is recorded in SQLite; after its first reply it imports
APScheduler, as kleinstadtbot starts its scheduler after its first answers. Nothing else: no
commands, no content, no migrations, so its memory and start-up are what the stack itself costs.

With ``--stack-least`` it is the least a bot on that stack must do before its first answer:
the collector paused while it starts (as ``kleinstadtbot`` runs), the settings read and the
command recorded in SQLite before the reply (a bot that answers each command once needs both),
the reply plain text, and Jinja2, Babel and APScheduler imported only after it.

With ``--stack-guide`` it is the least a bot on that stack does before its first answer when
it follows the developers' guide as kleinstadtbot must: as ``--stack-least``, but the settings
come from a YAML file (and the environment), and the reply is rendered before it is sent, from
a Jinja2 template file with the i18n extension (kept compiled in DATA_DIR after the first
start, as kleinstadtbot keeps its templates) and a duration formatted by Babel in German; it
goes out as a notice with HTML and plain text, a reply relation and ``m.mentions``. Nothing of
the bot: no commands, no content, no migrations. Its warm restart is the floor of that figure
for any bot bound to those conventions.

    python bench/floor_e2e.py [--stack | --stack-least | --stack-guide] \
        HOMESERVER USER_ID ACCESS_TOKEN DEVICE_ID DATA_DIR
"""

import gc
import sys
import time

STARTED_MS = int(time.time() * 1000)  # before the imports: commands sent after this are answered
GUIDE = "--stack-guide" in sys.argv
LEAST = "--stack-least" in sys.argv
if LEAST or GUIDE:
    gc.disable()  # until the first reply is out, as bot/launch.py does

import asyncio  # noqa: E402
import contextlib  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from nio import AsyncClient, AsyncClientConfig, MatrixRoom, RoomMessageText  # noqa: E402


class Stack:
    """What a bot on the project's stack does besides nio (``--stack``, ``--stack-least``,
    ``--stack-guide``)."""

    def __init__(self, least: bool, guide: bool = False) -> None:
        self.least = least
        self.guide = guide
        self.rendering_loaded = False
        self.started = time.monotonic()

    def load_rendering(self, data_dir: Path | None = None) -> None:
        import jinja2
        from babel.numbers import format_decimal

        if data_dir is None:
            environment = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
            environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
            self.template = environment.from_string("{% trans %}{{ body }} ({{ size }}){% endtrans %}")
        else:  # --stack-guide: a template file, kept compiled, and a duration in German
            from babel.dates import format_timedelta

            templates = data_dir / "floor-templates"
            if not templates.is_dir():
                templates.mkdir()
                (templates / "reply.html").write_text(
                    "<p>{% trans uptime=uptime|duration %}{{ body }}: läuft seit {{ uptime }}."
                    "{% endtrans %}</p>"
                )
            (data_dir / "floor-compiled").mkdir(exist_ok=True)
            environment = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(templates)),
                bytecode_cache=jinja2.FileSystemBytecodeCache(str(data_dir / "floor-compiled")),
                extensions=["jinja2.ext.i18n"],
                autoescape=True,
                auto_reload=False,
            )
            environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
            environment.filters["duration"] = lambda seconds: format_timedelta(
                timedelta(seconds=seconds), threshold=1.5, locale="de"
            )
            self.template = environment.get_template("reply.html")
        self.format_decimal = format_decimal
        self.rendering_loaded = True

    async def open(self, data_dir: Path) -> None:
        import aiosqlite
        from pydantic import BaseModel
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Sync(BaseModel):
            timeout_ms: int = 30000

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="FLOOR_", env_nested_delimiter="__")
            locale: str = "de"
            sync: Sync = Sync()

        if self.guide:
            import yaml

            config = data_dir / "floor.yaml"
            if not config.exists():
                config.write_text("locale: de\nsync:\n  timeout_ms: 30000\n")
            self.settings = Settings(**yaml.safe_load(config.read_text()))
        else:
            self.settings = Settings()
        self.db = await aiosqlite.connect(data_dir / "floor.db")
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute("CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, body TEXT)")
        if self.guide:
            self.load_rendering(data_dir)
        elif not self.least:
            self.load_rendering()
        self.scheduler_loaded = False

    async def reply(self, event: RoomMessageText) -> dict[str, Any]:
        await self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (event.event_id, event.body))
        await self.db.commit()
        if not self.rendering_loaded:
            return {"msgtype": "m.notice", "body": event.body}
        if not self.guide:
            size = self.format_decimal(len(event.body), locale=self.settings.locale)
            return {"msgtype": "m.notice", "body": self.template.render(body=event.body, size=size)}
        from markupsafe import Markup

        markup = self.template.render(body=event.body, uptime=int(time.monotonic() - self.started))
        return {
            "msgtype": "m.notice",
            "body": Markup(markup).striptags(),
            "format": "org.matrix.custom.html",
            "formatted_body": markup,
            "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
            "m.mentions": {"user_ids": [event.sender]},
        }

    def after_first_reply(self) -> None:
        if not self.scheduler_loaded:
            self.scheduler_loaded = True
            if self.least:
                self.load_rendering()
            if self.least or self.guide:
                gc.enable()
            import apscheduler.schedulers.asyncio  # noqa: F401


async def main() -> None:
    stack = Stack(LEAST, GUIDE) if LEAST or GUIDE or "--stack" in sys.argv else None
    arguments = [a for a in sys.argv[1:] if not a.startswith("--stack")]
    homeserver, user_id, token, device_id, data_dir = arguments[:5]
    store = Path(data_dir) / "floor-store"
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        homeserver,
        user_id,
        device_id=device_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
    )
    client.restore_login(user_id, device_id, token)
    if stack is not None:
        await stack.open(Path(data_dir))
    cutoff_ms = STARTED_MS - 1000

    async def on_message(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == user_id or event.server_timestamp < cutoff_ms or not event.body.startswith("!"):
            return
        content = {"msgtype": "m.notice", "body": event.body} if stack is None else await stack.reply(event)
        await client.room_send(room.room_id, "m.room.message", content, ignore_unverified_devices=True)
        if stack is not None:
            stack.after_first_reply()

    client.add_event_callback(on_message, RoomMessageText)
    try:
        await client.sync_forever(timeout=30000)
    finally:
        await client.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
