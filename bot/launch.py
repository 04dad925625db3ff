"""The ``kleinstadtbot`` console script: the command line, with Python's cyclic garbage collector
paused while the bot starts, the methods dataclasses generate taken compiled from the last
start (``bot.code_cache``, until the start is over), and the packages nio imports but the bot
never uses left unloaded until something reads them (``bot.deferred_imports``).

A start imports nio, aiohttp, pydantic, Jinja2 and the bot: objects that mostly live as long as
the process. Every 700 net allocations the collector looks at the young ones, and as they pile up at
all of them again, to free almost nothing (about 2,600 objects in cycles, under 1 MB). Paused,
the start takes 40-60 ms less CPU before its first answer (bench/README.md, "The tenth series"),
for about 1 MB more resident memory. Reference counting frees everything else as before.

The pause ends (``resume_collector``) with whichever comes first:
- ``kleinstadtbot run``: once the first answers are out (``KleinstadtBot._run_startup_hooks``), or
  ``COLLECTOR_PAUSE_SECONDS`` after the runtime started, whatever held it up (a homeserver that
  is down, a long first sync), or when the run ends;
- every other command: as soon as its arguments are read.

``python -m bot.cli`` runs the same command line without the pause, the compiled methods and the
deferred packages.
"""

from __future__ import annotations

import gc
import logging
import sys
import time

from bot import code_cache, deferred_imports

COLLECTOR_PAUSE_SECONDS = 10.0  # the longest a run keeps the collector paused (restarts: < 1 s)

log = logging.getLogger(__name__)
_paused_at: float | None = None  # set while the launcher's pause lasts


def pause_collector() -> None:
    """Pause the cyclic collector for the start (a no-op if it is already off)."""
    global _paused_at
    if gc.isenabled():
        gc.disable()
        _paused_at = time.monotonic()


def resume_collector(reason: str) -> None:
    """End ``pause_collector``'s pause; idempotent, and it never turns on a collector that
    someone else turned off."""
    global _paused_at
    if _paused_at is None:
        return
    paused_for = time.monotonic() - _paused_at
    _paused_at = None
    gc.enable()
    log.debug("garbage collector on again after %.2f s (%s)", paused_for, reason)


def collector_paused() -> bool:
    return _paused_at is not None


def main() -> int:
    pause_collector()
    code_cache.install()
    deferred_imports.defer()
    from bot.cli import main as command_line

    try:
        return command_line()
    finally:
        resume_collector("the command ended")
        code_cache.finish("the command ended")


if __name__ == "__main__":  # python -m bot.launch: the pause is kept in bot.launch, not in __main__
    from bot import launch

    sys.exit(launch.main())
