"""General commands: ``!help`` and ``!ping``."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from commands.context import Context, Role
from commands.registry import REGISTRY, Arg, command
from config.catalogs import N_, NP_

GROUP_ORDER = ["general", "towns", "content", "community", "tandems", "admin"]
FIRST_ANSWERS = (
    "ping",
    "help_list",
    "help_command",
    "error_unknown_command",
    "error_usage",
    "plain_text_fallback",
)


@cache
def bot_version() -> str:
    try:
        return version("kleinstadtbot")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+source"


@command(
    "help",
    aliases={"de": ["hilfe"], "en": ["help"]},
    group="general",
    args=[Arg("command", required=False, label=NP_("usage", "Befehl"))],
    summary=N_("Zeigt, was der Bot kann."),
    help=N_("Ohne Angabe: alle Befehle, die Sie nutzen können. Mit einem Befehl: seine Einzelheiten."),
    examples=["hilfe", "hilfe berechtigt"],
)
async def help_command(ctx: Context, command: str | None = None) -> None:
    prefix, locale = ctx.prefix, ctx.locale
    if command:
        word = command.removeprefix(prefix).lower()
        cmd = REGISTRY.find(word)
        if cmd is None or (cmd.hidden and cmd.min_role() > ctx.role):
            await ctx.reply(
                "error_unknown_command", word=word, suggestions=REGISTRY.suggest(word, ctx.role, prefix)
            )
            return
        await ctx.reply("help_command", **REGISTRY.describe(cmd, ctx.role, prefix, locale, (word,)))
        return
    visible = REGISTRY.visible(ctx.role)
    groups = [
        {
            "key": key,
            "commands": [
                {
                    "usage": c.usage(prefix, locale) if c.handler else c.invocation(prefix, locale),
                    "summary": c.text("summary", locale),
                }
                for c in visible[key]
            ],
        }
        for key in sorted(visible, key=lambda k: (GROUP_ORDER.index(k) if k in GROUP_ORDER else 99, k))
    ]
    await ctx.reply(
        "help_list",
        groups=groups,
        role=ctx.role.label,
        help_word=ctx.invocation(),
    )


@command(
    "ping",
    aliases={"de": ["ping"]},
    group="general",
    summary=N_("Prüft, ob der Bot antwortet."),
    examples=["ping"],
)
async def ping(ctx: Context) -> None:
    uptime = ctx.services.clock.monotonic() - ctx.services.started_at
    await ctx.reply("ping", version=bot_version(), uptime_seconds=int(max(0, uptime)))


@command(
    "status",
    aliases={"de": ["status"]},
    group="admin",
    role=Role.COORDINATOR,
    summary=N_("Zeigt den Zustand des Bots."),
    help=N_("Version, Laufzeit, Datenbankstand und beantwortete Anfragen der letzten 24 Stunden."),
    examples=["status"],
)
async def status(ctx: Context) -> None:
    since = int(ctx.services.clock.now().timestamp() * 1000) - 24 * 3600 * 1000
    answered = await ctx.db.fetchone("SELECT count(*) FROM handled_events WHERE handled_at >= ?", (since,))
    await ctx.reply(
        "status",
        version=bot_version(),
        uptime_seconds=int(max(0, ctx.services.clock.monotonic() - ctx.services.started_at)),
        schema=await ctx.db.version(),
        answered=answered[0] if answered else 0,
    )
