"""``!protokoll``: the audit trail for coordinators (``storage.audit``).

Entries name people by their Matrix ID and repeat what coordinators typed, so they are listed
only in the coordination room (where one is configured), never in a tandem room.
"""

from __future__ import annotations

from commands.context import Context, Role
from commands.registry import REGISTRY, Arg, command
from config.catalogs import N_, NP_
from storage.audit import AuditRepository

DEFAULT_ENTRIES = 20
MAX_ENTRIES = 100


async def coordination_room_id(ctx: Context) -> str | None:
    """The coordination room's ID (an alias is resolved once); None when none is configured
    or it cannot be found."""
    room = ctx.settings.coordination_room
    if not room:
        return None
    if room.startswith("!"):
        return room
    key = f"coordination-room:{room}"
    if key not in ctx.services.cache:
        resolved = await ctx.services.matrix.resolve_alias(room)
        if resolved is None:
            return None
        ctx.services.cache[key] = resolved
    return ctx.services.cache[key]


def shown_action(ctx: Context, action: str) -> str:
    """``tandem pause`` as the bot's locale writes it (``!tandem pausieren``); an operator's
    action on the server as it was typed there."""
    words = action.split(" ")
    cmd = REGISTRY.find(words[0])
    for word in words[1:]:
        cmd = cmd.subcommands.get(word) if cmd is not None else None
    return cmd.invocation(ctx.prefix, ctx.locale) if cmd is not None else f"kleinstadtbot {action}"


@command(
    "audit",
    aliases={"de": ["protokoll"], "en": ["audit"]},
    group="admin",
    role=Role.COORDINATOR,
    args=[Arg("count", "int", required=False, label=NP_("usage", "Anzahl"))],
    summary=N_("Zeigt, wer zuletzt was als Koordination getan hat (im Koordinationsraum)."),
    help=N_(
        "Jede Aktion der Koordination (Tandems anlegen, pausieren, fortsetzen, beenden, Themenkanäle "
        "anlegen, zentralörtliche Funktionen, Inhalte neu laden, Check-in-Rhythmen) wird mit Person, "
        "Zeit, Angaben und Ergebnis festgehalten. Ohne Anzahl zeigt der Bot die letzten 20 Einträge, "
        "höchstens 100."
    ),
    examples=["protokoll", "protokoll 50"],
)
async def audit_list(ctx: Context, count: int | None = None) -> None:
    room = ctx.settings.coordination_room
    if room and await coordination_room_id(ctx) != ctx.room_id:
        await ctx.reply("audit_elsewhere", room=room)
        return
    wanted = DEFAULT_ENTRIES if count is None else count
    if not 1 <= wanted <= MAX_ENTRIES:
        await ctx.reply("audit_count", limit=MAX_ENTRIES, example=f"{ctx.invocation()} {DEFAULT_ENTRIES}")
        return
    entries = await AuditRepository(ctx.db).recent(wanted)
    await ctx.reply(
        "audit_list",
        entries=[
            {
                "at": entry.at,
                "actor": entry.actor,
                "action": shown_action(ctx, entry.action),
                "detail": sorted(entry.detail.items()),
                "outcome": entry.outcome,
                "result": entry.result,
            }
            for entry in entries
        ],
    )
