"""Message catalogs: every text users read is written once, in German, and translated by gettext.

German is the source language: templates (``config/templates/<name>.html``) and command
declarations hold the German text as the message ID, so German users read exactly what the team
wrote and reviewed, even without any catalog. Every other locale is one catalog,
``config/locale/<locale>/LC_MESSAGES/messages.po``, edited by translators and compiled to
``messages.mo`` by the package install (``setup.py``) or ``pybabel compile``. Adding a locale is
adding a catalog.

A compiled catalog is read once per process (``translations``); rendering a message only looks
strings up in it.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

SOURCE_LOCALE = "de"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class CatalogMissing(RuntimeError):
    """A configured locale has no compiled catalog."""


def N_(message: str) -> str:
    """Mark a German text for extraction (``pybabel extract``) where it is declared, e.g. a
    command's summary at import time; it is translated where it is shown (``translate``)."""
    return message


def NP_(context: str, message: str) -> str:
    """Like ``N_``, with a context that tells translators where the text stands (``"usage"``: a
    placeholder in a usage line, ``<Thema>``); translate it with ``translate(…, context)``."""
    return message


def catalog_path(locale: str, suffix: str = ".mo") -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


def locales() -> tuple[str, ...]:
    """German and every locale that has a catalog."""
    found = sorted(path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (SOURCE_LOCALE, *(loc for loc in found if loc != SOURCE_LOCALE))


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of ``locale``, read once; German needs none (its text is the source)."""
    if locale == SOURCE_LOCALE:
        return gettext.NullTranslations()
    path = catalog_path(locale)
    try:
        with path.open("rb") as mo:
            return gettext.GNUTranslations(mo)
    except FileNotFoundError:
        if catalog_path(locale, ".po").exists():
            hint = "compile it with `pybabel compile` or reinstall the package (`pip install -e .`)"
        else:
            hint = f"add one: `pybabel init -i config/locale/messages.pot -d config/locale -l {locale}`"
        raise CatalogMissing(f"no compiled message catalog for locale {locale!r} ({path}); {hint}") from None


def translate(locale: str, message: str, context: str | None = None) -> str:
    """``message`` (German, marked with ``N_``, or ``NP_`` with its ``context``) in ``locale``."""
    if not message:  # gettext("") would return the catalog's header
        return message
    if context is not None:
        return translations(locale).pgettext(context, message)
    return translations(locale).gettext(message)
