"""What the code cache (``bot/code_cache.py``) saves a start: CPU of importing what the bot needs
before its first answer, in fresh interpreters, with the cache and without, alternating.

Each pair runs one interpreter with the cache installed (as the console script installs it) and
one without; both import the command line, the runtime and the first answer's set-up (Jinja2,
Babel, the dispatcher and ``!ping``'s family), with the collector paused as on a start. The
cache lives in a folder of its own, filled by one start before the pairs. Prints the medians,
the extremes and the median of the pairs' differences (the host's own drift cancels in those)::

    python bench/code_cache.py [--pairs 20] [--python PATH]

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
store = code_cache.install() if sys.argv[1] == "on" else None
import bot.cli, bot.runtime
from bot.runtime import _import_set_up
_import_set_up()
import bot.app
took = time.process_time() - began
counts = f"{len(store.used)} {len(store.added)}" if store else "0 0"
code_cache.finish("measured")
print(f"{took * 1000:.1f} {counts}")
"""


def one(python: str, mode: str, env: dict[str, str]) -> tuple[float, int, int]:
    out = subprocess.run(
        [python, "-c", START, mode], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if k not in ("CACHE_DIRECTORY", "XDG_CACHE_HOME")}
        env["CACHE_DIRECTORY"] = folder
        _, _, compiled = one(args.python, "on", env)  # fills the cache, as a first start does
        on: list[float] = []
        off: list[float] = []
        taken = 0
        for _ in range(args.pairs):
            ms, taken, _ = one(args.python, "on", env)
            on.append(ms)
            off.append(one(args.python, "off", env)[0])
    print(f"dataclass methods compiled by the first start: {compiled}; taken from the cache later: {taken}")
    for name, values in (("with the cache", on), ("without", off)):
        print(
            f"{name}: median {statistics.median(values):.0f} ms CPU "
            f"(min {min(values):.0f}, max {max(values):.0f}; {len(values)} starts)"
        )
    saved = statistics.median(b - a for a, b in zip(on, off, strict=True))
    print(f"saved, median of the pairs: {saved:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
