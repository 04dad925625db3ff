"""``!profile`` / ``!profil``: link yourself to your town and your topics; see, export, delete.

Towns are found in the municipality register with the same forgiving search as ``!berechtigt``
(``commands.towns_search``).
"""

from __future__ import annotations

import logging
from typing import Any

from commands.academy_space import invite_to_space
from commands.context import Context, Services
from commands.registry import Arg, command
from commands.towns_search import find_towns
from config.catalogs import N_, NP_
from config.topics import default_topics
from storage.community import ProfileRepository, TandemRepository
from storage.personal_data import PersonalData

log = logging.getLogger(__name__)

# --- the command --------------------------------------------------------------------------

TOPIC_ADD = {"add", "hinzufügen", "hinzufuegen", "dazu", "plus", "+"}
TOPIC_REMOVE = {"remove", "entfernen", "weg", "löschen", "loeschen", "minus", "-"}
CONFIRM_WORDS = {"ja", "bestätigen", "bestaetigen", "yes", "confirm"}


def topic_labels(ids, locale: str) -> list[str]:
    topics = default_topics()
    return [topics.by_id[i].label(locale) if i in topics.by_id else i for i in ids]


@command(
    "profile",
    aliases={"de": ["profil"], "en": ["profile"]},
    group="community",
    summary=N_("Ihr Profil: Ihre Stadt oder Gemeinde und Ihre Themen."),
    help=N_(
        "Ohne Angabe zeigt der Befehl Ihr Profil. Mit Ihrer Stadt oder Gemeinde und Ihren Themen "
        "können Koordinatorinnen und Koordinatoren passende Tandems vorschlagen. Sie können alles "
        "jederzeit ansehen, exportieren und löschen."
    ),
    examples=["profil ort Wittenberge", "profil themen hinzufügen Wohnen", "profil"],
)
async def profile_cmd(ctx: Context) -> None:
    profile = await ProfileRepository(ctx.db).get(ctx.sender)
    await ctx.reply("profile_show", profile=_profile_data(profile, ctx.locale))


def _profile_data(profile, locale: str) -> dict | None:
    if profile is None:
        return None
    return {
        "town": profile.town,
        "ags": profile.ags,
        "kreis": profile.kreis,
        "land": profile.land,
        "population": profile.population,
        "topics": topic_labels(profile.topics, locale),
    }


@profile_cmd.subcommand(
    "town",
    aliases={"de": ["ort", "stadt", "gemeinde"], "en": ["town"]},
    args=[Arg("town", "text", label=NP_("usage", "Stadt oder AGS"))],
    summary=N_("Verknüpft Ihr Profil mit Ihrer Stadt oder Gemeinde."),
    examples=["profil ort Wittenberge", "profil ort 07141501"],
)
async def profile_town(ctx: Context, town: str) -> None:
    found = await find_towns(ctx.services, town)
    if found.status == "exact" and found.towns:
        chosen = found.towns[0]
        repo = ProfileRepository(ctx.db)
        first_profile = await repo.get(ctx.sender) is None
        await repo.set_town(
            ctx.sender,
            ags=chosen.ags,
            town=chosen.name,
            kreis=chosen.kreis,
            land=chosen.land,
            population=chosen.population,
            now=ctx.services.clock.now(),
        )
        profile = await repo.get(ctx.sender)
        # a new member of the academy: into the Space, where the topic channels are
        invited = first_profile and await invite_to_space(ctx.services, ctx.sender)
        await ctx.reply(
            "profile_town_set",
            town=chosen.name,
            kreis=chosen.kreis_label,
            land=chosen.land,
            has_topics=bool(profile and profile.topics),
            invited_to_space=invited,
            space_name=ctx.settings.space_name,
        )
        return
    await ctx.reply("profile_town_unclear", query=town, status=found.status, towns=found.towns[:8])


@profile_cmd.subcommand(
    "topics",
    aliases={"de": ["themen", "thema"], "en": ["topics"]},
    args=[
        Arg("action", label=NP_("usage", "hinzufügen|entfernen")),
        Arg("topic", "text", label=NP_("usage", "Thema")),
    ],
    summary=N_("Fügt ein Thema hinzu oder entfernt es."),
    examples=[N_("profil themen hinzufügen Wohnen"), N_("profil themen entfernen Mobilität")],
)
async def profile_topics(ctx: Context, action: str, topic: str) -> None:
    action = action.lower()
    if action not in TOPIC_ADD | TOPIC_REMOVE:
        await ctx.reply("profile_topic_problem", problem="action", value=action)
        return
    topics = default_topics()
    match = topics.match(topic)
    if match is None:
        await ctx.reply(
            "profile_topic_problem",
            problem="unknown_topic",
            value=topic,
            topics=[t.label(ctx.locale) for t in topics],
        )
        return
    repo = ProfileRepository(ctx.db)
    if await repo.get(ctx.sender) is None:
        await ctx.reply("profile_topic_problem", problem="no_profile", value=topic)
        return
    now = ctx.services.clock.now()
    if action in TOPIC_ADD:
        changed = await repo.add_topic(ctx.sender, match.id, now)
    else:
        changed = await repo.remove_topic(ctx.sender, match.id, now)
    profile = await repo.get(ctx.sender)
    await ctx.reply(
        "profile_topic_changed",
        added=action in TOPIC_ADD,
        changed=changed,
        topic=match.label(ctx.locale),
        topics=topic_labels(profile.topics if profile else (), ctx.locale),
    )


@profile_cmd.subcommand(
    "delete",
    aliases={"de": ["löschen", "loeschen"], "en": ["delete"]},
    args=[Arg("confirm", required=False, label=NP_("usage", "bestätigen"))],
    summary=N_("Löscht alles, was der Bot über Sie gespeichert hat."),
    examples=["profil löschen", N_("profil löschen bestätigen")],
)
async def profile_delete(ctx: Context, confirm: str | None = None) -> None:
    if confirm is None or confirm.lower() not in CONFIRM_WORDS:
        await ctx.reply("profile_delete_confirm", wrong_word=confirm)
        return
    removed = await forget_person(ctx.services, ctx.sender)
    await ctx.reply(
        "profile_deleted",
        had_profile=removed["profile"],
        tandems=removed["tandems"],
        records=removed["records"],
    )


async def forget_person(services: Services, user_id: str) -> dict[str, Any]:
    """Delete or pseudonymise everything the bot stores about ``user_id``
    (``storage.personal_data`` declares what and how)."""
    erasure = await PersonalData(services.db).erase(user_id)
    return {
        "profile": erasure.count("profiles") > 0,
        "tandems": erasure.count("tandems"),
        # records that concern others too and stay, with a pseudonym (tandems are named above)
        "records": erasure.kept_with_pseudonym("tandems"),
    }


# Shown in their own sections of the export: the profile and the tandems the person is part of.
EXPORTED_ABOVE = {"profiles.user_id", "profile_topics.user_id", "tandems.user_a", "tandems.user_b"}


@profile_cmd.subcommand(
    "export",
    aliases={"de": ["export", "exportieren"], "en": ["export"]},
    summary=N_("Zeigt Ihnen alles, was der Bot über Sie gespeichert hat."),
    examples=["profil export"],
)
async def profile_export(ctx: Context) -> None:
    profile = await ProfileRepository(ctx.db).get(ctx.sender)
    tandems = await TandemRepository(ctx.db).list(user_id=ctx.sender)
    await ctx.reply(
        "profile_export",
        user_id=ctx.sender,
        profile=_profile_data(profile, ctx.locale),
        created_at=profile.created_at if profile else None,
        updated_at=profile.updated_at if profile else None,
        tandems=[
            {
                "id": t.id,
                "towns": f"{t.town_a} ⇄ {t.town_b}",
                "topic": t.topic_label,
                "state": t.state,
                "created_at": t.created_at,
            }
            for t in tandems
        ],
        records=[
            {"what": f"{r.table}.{r.column}", "kind": r.erase.value, "fields": r.values}
            for r in await PersonalData(ctx.db).export(ctx.sender)
            if f"{r.table}.{r.column}" not in EXPORTED_ABOVE
        ],
    )
