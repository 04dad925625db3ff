"""Every bot message comes from one Jinja2 template: HTML autoescaped, plain text derived.

A message is one template, ``config/templates/<name>.html``, for every locale. Its words are
German and marked for translation (``{% trans %}…{% endtrans %}``, ``_("…")``); Jinja2's i18n
extension looks them up in the locale's gettext catalog (``config.catalogs``), loaded once per
renderer. Filters format numbers and dates for the locale with Babel and turn operator Markdown
into HTML with markdown-it (raw HTML in Markdown is escaped, never passed through).
"""

from __future__ import annotations

import hashlib
import html
import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup

from commands.parsing import neutralise
from config.catalogs import locales, translations

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "templates"
# Whitespace inside {% trans %} blocks is collapsed, so a catalog's message IDs do not depend on
# how a template is indented; ``pybabel extract`` uses the same settings (pyproject.toml).
I18N_POLICIES = {"ext.i18n.trimmed": True}
# The options that shape a template's compiled code; the bytecode cache's files are named after
# them, so a change of options never runs code compiled under the old ones.
COMPILE_OPTIONS: dict[str, Any] = {
    "autoescape": True,  # every template is HTML
    "trim_blocks": True,
    "lstrip_blocks": True,
    "extensions": ["jinja2.ext.i18n"],
}
DATETIME_PATTERNS = {"de": "d. MMMM y, HH:mm 'Uhr'", "en": "d MMMM y, h:mm a"}
DATE_PATTERNS = {"de": "d. MMMM y", "en": "d MMMM y"}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt  # imported on first use: only operator content needs it

    md = (
        MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        .enable("table")
        .enable("strikethrough")
        .disable("image")  # clients show only mxc:// images; an image becomes a link to it
    )
    md.validateLink = _web_link  # type: ignore[method-assign]
    return md


def _web_link(url: str) -> bool:
    """Links keep only http(s) targets (matrix.to among them): no javascript:, data:, mailto:,
    custom schemes or relative paths. Others stay as the text written."""
    return url.strip().lower().startswith(("https://", "http://"))


def markdown_to_html(text: str) -> Markup:
    """Markdown (operator content, coordinators' broadcasts) → HTML. Raw HTML in the source is
    escaped (``html: False``); links keep only http(s) targets; images become links."""
    return Markup(_markdown().render(text or "").strip())


class _PlainText(HTMLParser):
    """HTML → readable plain text for ``body``: lists as bullets, links with their target."""

    BLOCKS: ClassVar[set[str]] = {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "table",
        "blockquote",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.lists: list[list[int]] = []
        self.href: list[str | None] = []
        self.link_text: list[int] = []
        self.skip = 0
        self.pre = 0

    def _newline(self, count: int = 1) -> None:
        text = "".join(self.out)
        trailing = len(text) - len(text.rstrip("\n"))
        if text and trailing < count:
            self.out.append("\n" * (count - trailing))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mx-reply":
            self.skip += 1
        elif tag == "pre":
            self.pre += 1
            self._newline(2)
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("ul", "ol"):
            self._newline()
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self._newline()
            indent = "  " * max(0, len(self.lists) - 1)
            if self.lists and self.lists[-1][0] >= 0:
                self.lists[-1][0] += 1
                self.out.append(f"{indent}{self.lists[-1][0]}. ")
            else:
                self.out.append(f"{indent}• ")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append(len(self.out))
        elif tag == "tr":
            self._newline()
        elif tag in ("td", "th"):
            self.out.append(" | " if self.out and not self.out[-1].endswith("\n") else "")
        elif tag in self.BLOCKS:
            self._newline(2 if tag in ("p", "h1", "h2", "h3", "h4", "blockquote") else 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "mx-reply":
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._newline(2)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._newline()
        elif tag == "a" and self.href:
            href = self.href.pop()
            start = self.link_text.pop()
            text = "".join(self.out[start:]).strip()
            if href and not href.startswith("https://matrix.to/") and href not in text:
                self.out.append(f" ({href})")
        elif tag in self.BLOCKS:
            self._newline(2 if tag in ("p", "h1", "h2", "h3", "h4", "blockquote") else 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # in HTML a line break in text is a space; only <br>, blocks and <pre> break lines
        self.out.append(data if self.pre else data.replace("\n", " "))

    def text(self) -> str:
        raw = "".join(self.out)
        lines = [
            " ".join(line.split()) if not line.startswith("  ") else line.rstrip() for line in raw.split("\n")
        ]
        cleaned, blank = [], 0
        for line in lines:
            blank = blank + 1 if not line.strip() else 0
            if blank <= 1:
                cleaned.append(line)
        return "\n".join(cleaned).strip()


def html_to_text(markup: str) -> str:
    parser = _PlainText()
    parser.feed(markup)
    parser.close()
    return parser.text()


class Renderer:
    """Renders a template name and its data to ``(plain body, html)`` for one locale."""

    def __init__(
        self,
        locale: str = "de",
        timezone: str = "Europe/Berlin",
        templates: Path | None = None,
        extra_globals: dict[str, Any] | None = None,
        compiled: Path | None = None,
    ):
        """``compiled``: a folder where templates are kept compiled (Jinja2's bytecode cache,
        checked against each template's source), so a restarted bot answers without parsing
        and compiling them again (2 ms for ``!ping``, 10 ms for the help, of CPU)."""
        if locale not in locales():
            raise ValueError(f"unknown locale {locale} (catalogs: {', '.join(locales())})")
        self.locale = locale
        self.tz = ZoneInfo(timezone)
        root = templates or TEMPLATES
        self.env = Environment(
            loader=FileSystemLoader(str(root)),
            undefined=StrictUndefined,
            auto_reload=False,
            bytecode_cache=_bytecode_cache(compiled),
            **COMPILE_OPTIONS,
        )
        self.env.policies.update(I18N_POLICIES)
        self.env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
        self.env.filters.update(
            number=self.number,
            datetime=self.datetime,
            date=self.date,
            duration=self.duration,
            markdown=markdown_to_html,
            user_link=user_link,
        )
        self.env.globals.update(extra_globals or {})
        self.env.globals["locale"] = locale
        self.env.globals["command"] = self.command

    # --- filters --------------------------------------------------------------------------

    def number(self, value: int | float | None, digits: int | None = None) -> str:
        if value is None:
            return "–"
        fmt = None if digits is None else "#,##0." + "0" * digits if digits else "#,##0"
        return format_decimal(value, format=fmt, locale=self.locale)

    def _aware(self, value: datetime | int | float) -> datetime:
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.tz)

    def datetime(self, value: datetime | int | float) -> str:
        pattern = DATETIME_PATTERNS.get(self.locale, "long")
        return format_datetime(self._aware(value), pattern, locale=self.locale)

    def date(self, value: Any) -> str:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            value = self._aware(value).date()
        return format_date(value, DATE_PATTERNS.get(self.locale, "long"), locale=self.locale)

    def duration(self, seconds: int | float) -> str:
        return format_timedelta(timedelta(seconds=seconds), threshold=1.5, locale=self.locale)

    def command(self, *names: str) -> str:
        """``{{ command("profile", "town") }}`` → ``!profil ort``: a text names another command
        by its declaration, in the locale's words, so it always names it one way."""
        from commands import load_families
        from commands.registry import REGISTRY

        load_families()
        return REGISTRY.invocation(names, str(self.env.globals.get("prefix", "!")), self.locale)

    # --- rendering ------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the locale's data, which Babel reads on first use (about 30 ms of CPU), so the
        first answer does not: numbers, dates and durations appear in most answers. Run beside
        the event loop at start. Templates compile when first used (a few ms each)."""
        self.number(1)
        self.duration(1)

    def render(self, template: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
        """``(plain body, html)``. Bidi and control characters are neutralised in the result,
        whatever brought them in (user text, stored data, a display name, content), so no message
        displays other than it reads."""
        markup = self.env.get_template(f"{template}.html").render(**(data or {})).strip()
        markup = neutralise(markup)
        return html_to_text(markup), markup


class _KeptTemplates(FileSystemBytecodeCache):
    """Jinja2's bytecode cache, whose writing never fails a message: a template that cannot be
    kept (the folder gone, the disk full) is rendered all the same and compiled again next time."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            log.debug("compiled template %s not kept", bucket.key, exc_info=True)


def _bytecode_cache(folder: Path | None) -> FileSystemBytecodeCache | None:
    """Jinja2's bytecode cache in ``folder`` (made if missing); none if it cannot be made (the
    templates then compile in memory, as without a folder)."""
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    options = repr((COMPILE_OPTIONS, I18N_POLICIES, "newstyle gettext"))
    fingerprint = hashlib.sha256(options.encode()).hexdigest()[:12]
    return _KeptTemplates(str(folder), pattern=f"%s-{fingerprint}.cache")


def user_link(user_id: str, name: str | None = None) -> Markup:
    """A mention pill: clients render matrix.to links to users as pills."""
    safe = html.escape(user_id, quote=True)
    label = html.escape(name or user_id)
    return Markup(f'<a href="https://matrix.to/#/{safe}">{label}</a>')
