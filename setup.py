"""One build step beyond pyproject.toml: compile the message catalogs.

Every install (``pip install -e '.[test]'``, ``pip install .``, a wheel) compiles
``config/locale/<locale>/LC_MESSAGES/messages.po`` to ``messages.mo`` with Babel before the
package files are collected, so the README's install commands do all the set-up. Fuzzy
translations are left out, as at run time. ``tests/test_catalogs.py`` checks that the compiled
catalogs match their sources.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def compile_catalogs(root: Path = ROOT) -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(root.glob("config/locale/*/LC_MESSAGES/*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as target:
            write_mo(target, catalog, use_fuzzy=False)
        written.append(mo)
    return written


class BuildWithCatalogs(build_py):
    """``build_py`` that compiles the catalogs first, in the source tree: an editable install
    reads them from there, and a regular build copies them as package data."""

    def run(self) -> None:
        compile_catalogs()
        self.__dict__.pop("data_files", None)  # collected lazily; recollect with the .mo files
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogs})
