"""``!module`` / ``!modul``: the learning and exchange modules, by topic, as excerpt or in full."""

from __future__ import annotations

import re

from commands.context import Context
from commands.faq_search import library
from commands.registry import Arg, command
from config.catalogs import N_, NP_
from config.content import Module
from config.topics import default_topics, fold

FULL_WORDS = {"full", "ganz", "komplett", "vollstaendig", "alles", "lang"}
SEARCH_MIN_CONFIDENCE = 0.34


def _topic_labels(module: Module, locale: str) -> list[str]:
    topics = default_topics()
    return [topics.by_id[t].label(locale) if t in topics.by_id else t for t in module.topics]


def _module_data(module: Module, locale: str, full: bool = False) -> dict:
    """What a template may show of a module: never its ``notes`` or ``unknown`` (author fields);
    ``duration`` and ``audience`` are empty when the sources do not give them."""
    first = module.first_section
    sections = module.sections if full else module.sections[:1]
    return {
        "id": module.id,
        "title": module.title,
        "format": module.format,
        "duration": module.duration,
        "audience": module.audience,
        "summary": module.summary,
        "topics": _topic_labels(module, locale),
        "sections": [{"title": s.title, "body": s.body} for s in sections],
        "more_sections": len(module.sections) - (1 if first else 0),
        "source": module.source,
    }


def _name_words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", re.sub(r"['’]", "", fold(text))))


def _names(module: Module) -> set[tuple[str, ...]]:
    """The ways a module is named: its title and format, each also without or as its part in
    parentheses ("Citizens' assembly (Bürgerrat)": "citizens assembly", "buergerrat")."""
    names = set()
    for text in (module.title, module.format):
        outside = re.sub(r"\([^)]*\)", " ", text)
        names |= {
            _name_words(text),
            _name_words(outside),
            *map(_name_words, re.findall(r"\(([^)]*)\)", text)),
        }
    return names - {()}


def by_name(modules: list[Module], query: str) -> Module | None:
    """The one module whose title or format is exactly what someone typed (a format that several
    modules share names none of them)."""
    wanted = _name_words(query)
    found = [m for m in modules if wanted in _names(m)]
    return found[0] if len(found) == 1 else None


def _short(module: Module) -> dict:
    return {"id": module.id, "title": module.title, "format": module.format}


@command(
    "module",
    aliases={"de": ["modul", "module"], "en": ["module"]},
    group="content",
    args=[Arg("name", "text", required=False, label=NP_("usage", "Modul"))],
    summary=N_("Lern- und Austauschmodule der Akademie."),
    help=N_(
        "Ohne Angabe: alle Module nach Thema. Mit Kürzel oder Wörtern aus dem Titel: die Kurzfassung "
        "mit Format, Themen, erstem Abschnitt und Quelle. Mit „ganz“ dahinter: das ganze Modul."
    ),
    examples=[
        "modul",
        "modul lernwerkstatt",
        N_("modul digitale-lernwerkstatt ganz"),
        N_("modul suche Jugend"),
    ],
)
async def module_command(ctx: Context, name: str | None = None) -> None:
    lib = await library(ctx.services)
    modules = lib.modules(ctx.locale)
    if not name:
        groups = []
        for topic in default_topics():
            inside = [_short(m) for m in modules if topic.id in m.topics]
            if inside:
                groups.append({"topic": topic.label(ctx.locale), "modules": inside})
        await ctx.reply("module_list", groups=groups, count=len(modules))
        return
    words = name.split()
    full = len(words) > 1 and fold(words[-1]) in FULL_WORDS
    query = " ".join(words[:-1]) if full else name
    module = lib.module(ctx.locale, query) or by_name(modules, query)
    if module is None:
        found = lib.find_modules(ctx.locale, query, limit=3)
        clear = (
            found
            and found[0][1].confident
            and (len(found) == 1 or found[1][1].score < 0.75 * found[0][1].score)
        )
        if not clear:
            close = [_short(m) for m, hit in found if hit.confidence >= SEARCH_MIN_CONFIDENCE]
            await ctx.reply("module_not_found", query=query, suggestions=close)
            return
        module = found[0][0]
    data = _module_data(module, ctx.locale, full)
    await ctx.reply("module_show", module=data, full=full)


@module_command.subcommand(
    "search",
    aliases={"de": ["suche", "suchen"], "en": ["search"]},
    args=[Arg("words", "text", label=NP_("usage", "Suchwörter"))],
    summary=N_("Durchsucht Titel und Inhalte der Module."),
    examples=[N_("modul suche Beteiligung Jugend")],
)
async def module_search(ctx: Context, words: str) -> None:
    lib = await library(ctx.services)
    found = [
        {**_short(m), "summary": m.summary}
        for m, hit in lib.find_modules(ctx.locale, words, limit=5)
        if hit.confidence >= SEARCH_MIN_CONFIDENCE
    ]
    await ctx.reply("module_search", words=words, results=found)
