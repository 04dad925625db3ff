"""Command families: one module per family, each declaring its commands with ``@command``.

Handlers get a ``Context`` and never touch nio, so Matrix, the console and the tests share them.
"""

from __future__ import annotations

import importlib

# One line per command family; a family module declares its commands at import time.
FAMILIES = [
    "commands.general",
    "commands.eligibility",
    "commands.academy_space",
    "commands.profiles",
    "commands.topic_channels",
    "commands.tandems",
    "commands.checkins",
    "commands.faq",
    "commands.modules",
    "commands.excerpts",
    "commands.broadcasts",
    "commands.audit",
]

_loaded = False


def load_families() -> None:
    global _loaded
    if _loaded:
        return
    for name in FAMILIES:
        importlib.import_module(name)
    _loaded = True
