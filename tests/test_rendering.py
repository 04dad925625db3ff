"""Templates and filters: German formats, autoescaping of user text, HTML → plain text."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.rendering import Renderer, html_to_text, markdown_to_html, user_link

EVIL = '<img src=x onerror="alert(1)">'
ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
MOMENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def de() -> Renderer:
    return Renderer("de", "Europe/Berlin", extra_globals={"prefix": "!"})


@pytest.fixture(scope="module")
def en() -> Renderer:
    return Renderer("en", "Europe/Berlin", extra_globals={"prefix": "!"})


# --- filters ----------------------------------------------------------------------------------


def test_german_numbers(de):
    assert de.number(18400) == "18.400"
    assert de.number(1234567) == "1.234.567"
    assert de.number(3.5, 1) == "3,5"
    assert de.number(None) == "–"


def test_english_numbers(en):
    assert en.number(18400) == "18,400"
    assert en.number(3.5, 1) == "3.5"


def test_german_datetime_in_berlin_time(de):
    assert de.datetime(MOMENT) == "1. Dezember 2026, 10:00 Uhr"
    # summer time: UTC+2
    assert de.datetime(datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == "1. Juli 2026, 11:00 Uhr"
    # naive datetimes count as UTC; milliseconds and seconds since the epoch both work
    assert de.datetime(datetime(2026, 12, 1, 9, 0)) == "1. Dezember 2026, 10:00 Uhr"
    assert de.datetime(int(MOMENT.timestamp() * 1000)) == "1. Dezember 2026, 10:00 Uhr"
    assert de.datetime(int(MOMENT.timestamp())) == "1. Dezember 2026, 10:00 Uhr"


def test_german_dates(de):
    assert de.date(date(2026, 3, 9)) == "9. März 2026"
    assert de.date("2026-12-01") == "1. Dezember 2026"
    # 23:30 UTC on 31 December is already New Year in Berlin
    assert de.date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "1. Januar 2027"


def test_english_dates_and_times(en):
    assert en.datetime(MOMENT) == "1 December 2026, 10:00 AM"
    assert en.date(date(2026, 3, 9)) == "9 March 2026"


def test_durations(de, en):
    assert de.duration(3 * 3600) == "3 Stunden"
    assert en.duration(3 * 3600) == "3 hours"


def test_template_filters_render_german_formats(de):
    body, html = de.render("status", {"version": "1", "uptime_seconds": 7200, "schema": 3, "answered": 18400})
    assert "18.400" in body and "2 Stunden" in body
    assert "<li>" in html and "<li>" not in body


# --- escaping ------------------------------------------------------------------------------------


def test_unknown_command_word_is_escaped(de):
    body, html = de.render("error_unknown_command", {"word": EVIL, "suggestions": [EVIL]})
    assert "<img" not in html
    assert ESCAPED in html
    assert EVIL in body  # the plain body shows the text as typed


@pytest.mark.parametrize(
    ("problem", "detail"),
    [
        ("missing", {"arg": EVIL}),
        ("extra", {"words": EVIL}),
        ("not_a_number", {"value": EVIL}),
        ("not_a_user", {"value": EVIL}),
        ("not_a_choice", {"value": EVIL, "choices": [EVIL]}),
        ("other", {"message": EVIL}),
    ],
)
@pytest.mark.parametrize("locale", ["de", "en"])
def test_usage_error_escapes_every_user_value(locale, problem, detail):
    renderer = Renderer(locale, extra_globals={"prefix": "!"})
    data = {
        "problem": problem,
        "detail": detail,
        "usage": f"!x {EVIL}",
        "examples": [EVIL],
        "help_word": EVIL,
    }
    body, html = renderer.render("error_usage", data)
    assert "<img" not in html
    assert ESCAPED in html
    assert EVIL in body


def test_help_command_escapes_declared_and_user_text(de):
    data = {
        "name": EVIL,
        "usage": EVIL,
        "summary": EVIL,
        "help": EVIL,
        "aliases": [EVIL],
        "examples": [EVIL],
        "role": "member",
        "allowed": True,
        "subcommands": [{"usage": EVIL, "summary": EVIL, "role": "member", "allowed": True}],
    }
    _body, html = de.render("help_command", data)
    assert "<img" not in html
    assert html.count(ESCAPED) >= 7


def test_user_link_escapes():
    link = user_link('@a"b<c>:example.org', "<b>Anna</b>")
    assert str(link) == (
        '<a href="https://matrix.to/#/@a&quot;b&lt;c&gt;:example.org">&lt;b&gt;Anna&lt;/b&gt;</a>'
    )


def test_markdown_escapes_raw_html():
    html = markdown_to_html("**Wichtig** <script>alert(1)</script>\n\n<b>fett</b>")
    assert "<strong>Wichtig</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>" not in html and "&lt;b&gt;fett&lt;/b&gt;" in html


def test_markdown_filter_in_a_template_is_not_escaped_twice(de):
    template = de.env.from_string("<div>{{ text | markdown }}</div>")
    html = template.render(text="- eins\n- *zwei*\n\n<i>x</i>")
    assert "<ul>" in html and "<em>zwei</em>" in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "<i>" not in html


# --- plain text --------------------------------------------------------------------------------


def test_html_to_text_lists_links_and_paragraphs():
    html = (
        "<p>Hallo <strong>Anna</strong>!</p><ul><li>eins</li><li>zwei</li></ul>"
        "<ol><li>erstens</li><li>zweitens</li></ol>"
        '<p>Mehr auf <a href="https://kleinstadtakademie.de">der Website</a>.</p>'
        '<p>Direkt: <a href="https://example.org/x">https://example.org/x</a> '
        'und <a href="https://matrix.to/#/@anna:x.org">Anna</a><br>neue Zeile</p>'
    )
    text = html_to_text(html)
    assert text.splitlines() == [
        "Hallo Anna!",
        "",
        "• eins",
        "• zwei",
        "1. erstens",
        "2. zweitens",
        "",
        "Mehr auf der Website (https://kleinstadtakademie.de).",
        "",
        "Direkt: https://example.org/x und Anna",
        "neue Zeile",
    ]


def test_html_to_text_nested_list_and_entities():
    text = html_to_text("<ul><li>Land<ul><li>Kreis &amp; Stadt</li></ul></li></ul>")
    assert "• Land" in text
    assert "  • Kreis & Stadt" in text


def test_html_to_text_drops_reply_fallback():
    assert html_to_text("<mx-reply><blockquote>alt</blockquote></mx-reply><p>neu</p>") == "neu"


# --- template sets ------------------------------------------------------------------------------


def test_english_error_templates_are_english(en, de):
    en_body, _ = en.render("error_quote", {})
    de_body, _ = de.render("error_quote", {})
    assert en_body != de_body
    assert "Anführungszeichen" not in en_body


def test_one_template_speaks_each_locale_with_plural_forms(de, en):
    assert de.render("error_rate_limited", {"seconds": 1})[0].endswith(
        "etwa 1 Sekunde, dann antworte ich wieder."
    )
    assert "etwa 30 Sekunden" in de.render("error_rate_limited", {"seconds": 30})[0]
    assert "about 1 second," in en.render("error_rate_limited", {"seconds": 1})[0]
    assert "about 30 seconds," in en.render("error_rate_limited", {"seconds": 30})[0]


def test_texts_name_commands_by_their_declaration_in_the_locale(de, en):
    assert de.command("profile", "town") == "!profil ort"
    assert en.command("profile", "town") == "!profile town"
    assert "<code>!berechtigt " in de.render("error_quote")[1]
    assert "<code>!eligible " in en.render("error_quote")[1]
    with pytest.raises(KeyError):
        de.command("gibtsnicht")


def test_a_locale_without_catalog_is_refused():
    with pytest.raises(ValueError, match="unknown locale"):
        Renderer("fr")


def test_soft_line_breaks_in_markdown_become_spaces_in_the_plain_body():
    from bot.rendering import html_to_text, markdown_to_html

    html = markdown_to_html(
        "Eine Gemeinde ist eine Kleinstadt,\nwenn sie 5.000 Einwohner hat.\n\n```\na\nb\n```"
    )
    text = html_to_text(str(html))
    assert "Kleinstadt, wenn sie" in text
    assert "a\nb" in text  # preformatted text keeps its lines


def test_a_catalog_that_was_never_compiled_is_reported_with_the_fix(tmp_path, monkeypatch):
    import config.catalogs as catalogs

    (tmp_path / "xx" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "xx" / "LC_MESSAGES" / "messages.po").write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    monkeypatch.setattr(catalogs, "LOCALE_DIR", tmp_path)
    catalogs.translations.cache_clear()
    try:
        assert catalogs.locales() == ("de", "xx")
        with pytest.raises(catalogs.CatalogMissing, match="pybabel compile"):
            catalogs.translations("xx")
        assert catalogs.translate("de", "Guten Tag") == "Guten Tag"  # German needs no catalog
    finally:
        catalogs.translations.cache_clear()


@pytest.mark.parametrize("locale", ["de", "en"])
def test_the_warm_up_loads_the_locale_data_the_first_answer_would_load(locale):
    """In a fresh interpreter, as at start: Babel has read no locale data until the warm-up."""
    import subprocess
    import sys

    script = (
        "from babel import localedata\n"
        "from bot.rendering import Renderer\n"
        f"renderer = Renderer({locale!r}, 'Europe/Berlin')\n"
        f"before = {locale!r} in localedata._cache\n"
        "renderer.warm()\n"
        f"print(before, {locale!r} in localedata._cache)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


# --- compiled templates (the runtime's bytecode cache) ----------------------------------------


def test_a_restarted_renderer_answers_from_the_compiled_templates_without_compiling(tmp_path, monkeypatch):
    """The runtime keeps its templates compiled in the data folder: a new renderer (a restart)
    renders from there, compiling nothing, and its answers are the ones a fresh compile gives."""
    from jinja2 import Environment

    compiled = tmp_path / "cache" / "templates"
    first = Renderer("de", extra_globals={"prefix": "!"}, compiled=compiled)
    expected = first.render("ping", {"version": "1.2", "uptime_seconds": 3})
    assert [p.name for p in compiled.iterdir()] and all(p.suffix == ".cache" for p in compiled.iterdir())

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(Environment, "compile", no_compiling)
    restarted = Renderer("de", extra_globals={"prefix": "!"}, compiled=compiled)
    assert restarted.render("ping", {"version": "1.2", "uptime_seconds": 3}) == expected
    monkeypatch.undo()
    english = Renderer("en", extra_globals={"prefix": "!"}, compiled=compiled)  # one cache, any locale
    assert "running for" in english.render("ping", {"version": "1.2", "uptime_seconds": 3})[0]


def test_a_changed_template_is_compiled_again_not_taken_from_the_cache(tmp_path):
    """The cache is checked against each template's source: an edited template shows at once."""
    templates, compiled = tmp_path / "templates", tmp_path / "compiled"
    templates.mkdir()
    (templates / "note.html").write_text("<p>erste Fassung {{ n }}</p>", encoding="utf-8")
    assert Renderer(templates=templates, compiled=compiled).render("note", {"n": 1})[0] == "erste Fassung 1"
    (templates / "note.html").write_text("<p>zweite Fassung {{ n }}</p>", encoding="utf-8")
    assert Renderer(templates=templates, compiled=compiled).render("note", {"n": 2})[0] == "zweite Fassung 2"


def test_a_compiled_folder_that_cannot_be_made_leaves_the_templates_compiled_in_memory(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    renderer = Renderer("de", extra_globals={"prefix": "!"}, compiled=blocked / "templates")
    assert renderer.env.bytecode_cache is None
    assert renderer.render("ping", {"version": "1", "uptime_seconds": 3})[0].startswith("🏓 Pong!")


def test_a_compiled_folder_removed_while_the_bot_runs_never_fails_a_message(tmp_path):
    """The folder may be deleted (it needs no backup): templates not yet kept still render."""
    import shutil

    compiled = tmp_path / "compiled"
    renderer = Renderer("de", extra_globals={"prefix": "!"}, compiled=compiled)
    renderer.render("ping", {"version": "1", "uptime_seconds": 3})
    shutil.rmtree(compiled)
    body, _html = renderer.render("error_internal", {"ref": "abc123"})
    assert "abc123" in body
