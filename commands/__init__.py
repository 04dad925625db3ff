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

# Loaded first when the runtime starts (``load_families(first=True)``): ``!ping`` and ``!status``
# need nothing else.
FIRST = ["commands.general"]

_loaded = False


def load_families(first: bool = False) -> None:
    """Import the command families (each declares its commands into ``REGISTRY``). ``first``:
    only ``FIRST`` now; the others are imported when something needs them (a command word not
    found yet, help, plain text, reactions, edits: ``Registry.complete``), or by the runtime once
    its first answers are out. Importing all of them costs 0.2–0.3 s of CPU and 5 MB."""
    global _loaded
    if _loaded:
        return
    from commands.registry import REGISTRY

    if first:
        for name in FIRST:
            importlib.import_module(name)
        REGISTRY.pending = load_families
        return
    REGISTRY.pending = None
    for name in FAMILIES:
        importlib.import_module(name)
    _loaded = True
