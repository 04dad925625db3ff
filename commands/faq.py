"""``!faq`` / ``!frage``, plain questions in direct chats, and the coordinators' ``!reload``.

The content (``config/content``) is loaded once into a ``Library`` kept in ``services.cache``;
``!reload`` builds a new one and swaps it in only when the files are free of problems.
"""

from __future__ import annotations

import asyncio
import logging

from commands.context import Context, Role, Services
from commands.faq_search import CACHE_KEY, Library, content_root, library, load_library, words
from commands.registry import REGISTRY, Arg, command, on_startup, plain_text_handler
from config.catalogs import N_, NP_
from config.content import FaqEntry

log = logging.getLogger(__name__)

MAX_PROBLEMS_SHOWN = 15


def _faq_word(ctx: Context) -> str:
    """``!frage`` in German text, or the word the sender typed (``!faq``)."""
    return ctx.invocation(faq)


def _help_word(ctx: Context) -> str:
    return REGISTRY.invocation(("help",), ctx.prefix, ctx.locale)


def _entry_data(entry: FaqEntry) -> dict[str, str]:
    return {"id": entry.id, "question": entry.question, "answer": entry.answer, "source": entry.source}


@command(
    "faq",
    aliases={"de": ["frage", "fragen"], "en": ["faq"]},
    group="content",
    args=[Arg("question", "text", required=False, label=NP_("usage", "Frage"))],
    summary=N_("Antworten auf häufige Fragen."),
    help=N_(
        "Ohne Angabe: alle Fragen nach Thema. Mit einer Frage oder ein paar Stichwörtern: die "
        "passende Antwort. Im Direktchat können Sie Ihre Frage auch einfach so schreiben."
    ),
    examples=[N_("frage Wer darf mitmachen?"), "frage Tandem", "frage"],
)
async def faq(ctx: Context, question: str | None = None) -> None:
    lib = await library(ctx.services)
    if not question:
        groups: dict[str, list[dict]] = {}
        for item in lib.faq(ctx.locale):
            groups.setdefault(item.category, []).append({"id": item.id, "question": item.question})
        await ctx.reply(
            "faq_list",
            groups=[{"title": k, "entries": v} for k, v in groups.items()],
            faq_word=_faq_word(ctx),
        )
        return
    entry = lib.faq_entry(ctx.locale, question.strip().lower())
    if entry is not None:
        await ctx.reply("faq_answer", entry=_entry_data(entry), faq_word=_faq_word(ctx))
        return
    found = lib.ask(ctx.locale, question)
    if found and found[0][1].confident:
        await ctx.reply("faq_answer", entry=_entry_data(found[0][0]), faq_word=_faq_word(ctx))
        return
    await ctx.reply(
        "faq_suggestions",
        question=question,
        suggestions=[_entry_data(e) for e, _hit in found[:3]],
        faq_word=_faq_word(ctx),
        help_word=_help_word(ctx),
    )


@plain_text_handler
async def answer_plain_question(ctx: Context) -> bool:
    """A question without the prefix (direct chat or mention): answer it if we are confident,
    otherwise offer the closest questions. Returns False when nothing fits (the dispatcher then
    sends its short greeting with the help hint)."""
    text = ctx.request.body.strip()  # the transport has removed a mention of the bot
    if not words(text, ctx.locale):  # "Hallo", "Danke": the dispatcher's greeting fits better
        return False
    lib = await library(ctx.services)
    found = lib.ask(ctx.locale, text)
    if found and found[0][1].confident:
        await ctx.reply("faq_answer", entry=_entry_data(found[0][0]), faq_word=_faq_word(ctx))
        return True
    await ctx.reply(
        "faq_suggestions",
        question=text,
        suggestions=[_entry_data(e) for e, _hit in found[:3]],
        faq_word=_faq_word(ctx),
        help_word=_help_word(ctx),
    )
    return True


@command(
    "reload",
    audited=True,
    aliases={"de": ["neuladen", "neu-laden"], "en": ["reload"]},
    group="admin",
    role=Role.COORDINATOR,
    summary=N_("Lädt Fragen und Module neu."),
    help=N_(
        "Liest die FAQ- und Moduldateien neu ein, ohne Neustart. Wenn etwas fehlerhaft ist, bleibt "
        "die bisherige Fassung aktiv und Sie erhalten eine Liste der Fehler mit Datei und Zeile."
    ),
    examples=["neuladen"],
)
async def reload(ctx: Context) -> None:
    root = content_root(ctx.settings)
    fresh: Library = await asyncio.to_thread(load_library, root)
    if fresh.problems:
        current = await library(ctx.services)
        problems = [str(p) for p in fresh.problems]
        log.warning("content reload refused: %d problem(s)", len(problems))
        await ctx.reply(
            "faq_reload_failed",
            problems=problems[:MAX_PROBLEMS_SHOWN],
            more=max(0, len(problems) - MAX_PROBLEMS_SHOWN),
            faq_count=len(current.faq(ctx.locale)),
            module_count=len(current.modules(ctx.locale)),
        )
        return
    ctx.services.cache[CACHE_KEY] = fresh
    log.info("content reloaded from %s", root)
    await ctx.reply(
        "faq_reload_ok", faq_count=len(fresh.faq(ctx.locale)), module_count=len(fresh.modules(ctx.locale))
    )


@on_startup
async def check_content(services: Services) -> None:
    """Load and check the content at start; problems go to the log (the valid part serves)."""
    lib = await library(services)
    for problem in lib.problems:
        log.error("content: %s", problem)
    log.info(
        "content: %d FAQ entries, %d modules",
        len(lib.faq(services.settings.locale)),
        len(lib.modules(services.settings.locale)),
    )
