"""What the console script's import measures save a start: CPU of importing what the bot needs
before its first answer, in fresh interpreters, with a measure and without, alternating.

- ``--compare code-cache``: dataclasses' methods taken compiled from the last start
  (``bot/code_cache.py``) against compiled at every start.
- ``--compare deferred-imports``: the packages nio imports but the bot never uses left unloaded
  (``bot/deferred_imports.py``) against loaded at once. The code cache is on in both.

Each interpreter imports the command line, the runtime and the first answer's set-up (Jinja2,
Babel, the dispatcher and ``!ping``'s family), with the collector paused as on a start. The
code cache lives in a folder of its own, filled by one start before the pairs. Prints the
medians, the extremes and the median of the pairs' differences (the host's own drift cancels
in those)::

    python bench/start_imports.py [--compare code-cache|deferred-imports] [--pairs 20] [--python PATH]

``--python``: the interpreter of an installed bot (``bench/peers.sh --at`` installs one in
``$PB_HOME/kb-COMMIT/.venv-run``); by default this checkout's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = """
import gc, sys, time
gc.disable()
began = time.process_time()
from bot import code_cache
cache, deferred = sys.argv[1] == "on", sys.argv[2] == "on"
store = code_cache.install() if cache else None
if deferred:
    from bot import deferred_imports
    deferred_imports.defer()
import bot.cli, bot.runtime
from bot.runtime import _import_set_up
_import_set_up()
import bot.app
took = time.process_time() - began
counts = f"{len(store.used)} {len(store.added)}" if store else "0 0"
code_cache.finish("measured")
unread = len(deferred_imports.unread()) if deferred else 0
print(f"{took * 1000:.1f} {counts} {unread}")
"""
COMPARISONS = {  # (code cache, deferred imports) with the measure, and without it
    "code-cache": (("on", "off"), ("off", "off")),
    "deferred-imports": (("on", "on"), ("on", "off")),
}


def one(python: str, modes: tuple[str, str], env: dict[str, str]) -> list[float]:
    out = subprocess.run(
        [python, "-c", START, *modes], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return [float(value) for value in out]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="code-cache")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    with_it, without_it = COMPARISONS[args.compare]
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k not in ("CACHE_DIRECTORY", "XDG_CACHE_HOME")}
        env["CACHE_DIRECTORY"] = folder
        compiled = one(args.python, ("on", "off"), env)[2]  # fills the cache, as a first start does
        on: list[float] = []
        off: list[float] = []
        last: list[float] = []
        for _ in range(args.pairs):
            last = one(args.python, with_it, env)
            on.append(last[0])
            off.append(one(args.python, without_it, env)[0])
    taken, unread = int(last[1]), int(last[3])
    print(
        f"dataclass methods compiled by the first start: {compiled:.0f}; taken from the cache later: {taken}"
    )
    if args.compare == "deferred-imports":
        print(f"deferred modules left unread by the imports: {unread}")
    for name, values in (("with it", on), ("without", off)):
        print(
            f"{args.compare} {name}: median {statistics.median(values):.0f} ms CPU "
            f"(min {min(values):.0f}, max {max(values):.0f}; {len(values)} starts)"
        )
    saved = statistics.median(b - a for a, b in zip(on, off, strict=True))
    print(f"saved, median of the pairs: {saved:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
