"""``kleinstadtbot`` with a mark at each step of its start, until its first answer is accepted.

Each start appends one line per step to OUT: the process id, the wall seconds since the launch,
the process's CPU seconds, and the step (nio imported, the settings module imported, the
runtime imported, the settings read, the bot built, the database open, the joins loaded,
logged in, each sync sent and back, the set-up done, each send started and accepted). The
launch time is ``$STEPS_T0`` (seconds since the epoch, as ``date +%s.%N`` prints it) if set,
else the process's start time from /proc (10 ms steps). Nothing of the bot is imported before
the first mark (but the console script's own ``bot.launch``), so the imports count too; nio is
imported first. The garbage collector is paused for the start as the console script pauses it,
unless ``$STEPS_COLLECTOR`` is ``on``, and the dataclass methods come compiled from the last
start (``bot.code_cache``) unless ``$STEPS_CODE_CACHE`` is ``off``, and the packages nio imports
but the bot never uses wait until read (``bot.deferred_imports``) unless
``$STEPS_DEFERRED_IMPORTS`` is ``off``. The bot is imported as
installed (``bench/peers.sh --at`` installs a commit as an operator does), else from this
checkout. As the launch command of a peerbench run (warm
restarts, say)::

    python bench/start_steps.py OUT run --config kb.yaml
    env STEPS_T0=$(date +%s.%N) python bench/start_steps.py OUT run --config kb.yaml

``python bench/start_steps.py --summary OUT`` prints when each step first came in the first
start in OUT and, as the median, in the starts after it (a peerbench run's warm restarts).
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIRST_STEPS = 13  # the steps up to the first answer accepted; later ones are left out


def launched() -> float:
    """The launch time: ``$STEPS_T0``, else this process's start time from /proc (Linux)."""
    if os.environ.get("STEPS_T0"):
        return float(os.environ["STEPS_T0"])
    with open("/proc/self/stat") as f:
        stat = f.read()
    ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def main(out: str, argv: list[str]) -> int:
    start = launched()
    log = open(out, "a")  # noqa: SIM115 (open for the life of the process)
    done: list[str] = []

    def mark(step: str) -> None:
        if len(done) < FIRST_STEPS * 3:  # a few syncs and sends after the first answer at most
            done.append(step)
            log.write(f"{os.getpid()}\t{time.time() - start:.3f}\t{time.process_time():.3f}\t{step}\n")
            log.flush()

    if importlib.util.find_spec("bot") is None:  # not installed: this checkout's
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bot import code_cache, deferred_imports
    from bot.launch import pause_collector, resume_collector

    if os.environ.get("STEPS_COLLECTOR") != "on":  # on: the collector runs during the start too
        pause_collector()  # as the console script does (bot.launch)
    if os.environ.get("STEPS_CODE_CACHE") != "off":  # off: every dataclass method compiled
        code_cache.install()  # as the console script does
    if os.environ.get("STEPS_DEFERRED_IMPORTS") != "off":  # off: nio's unused packages loaded at once
        deferred_imports.defer()  # as the console script does
    import nio

    mark("nio imported")
    import config.settings

    mark("settings module imported")
    import bot.runtime as runtime
    from bot.membership import Membership
    from storage.database import Database

    mark("runtime imported")

    def after(owner: Any, name: str, step: str) -> None:
        wrapped = getattr(owner, name)

        async def marked(*args: Any, **kwargs: Any) -> Any:
            result = await wrapped(*args, **kwargs)
            mark(step)
            return result

        setattr(owner, name, marked)

    def around(owner: Any, name: str, before: str, then: str) -> None:
        wrapped = getattr(owner, name)

        async def marked(*args: Any, **kwargs: Any) -> Any:
            mark(before)
            result = await wrapped(*args, **kwargs)
            mark(then)
            return result

        setattr(owner, name, marked)

    load: Callable[..., Any] = config.settings.load_settings

    def load_settings(*args: Any, **kwargs: Any) -> Any:
        settings = load(*args, **kwargs)
        mark("settings read")
        return settings

    config.settings.load_settings = load_settings
    build = runtime.KleinstadtBot.__init__

    def built(self: Any, *args: Any, **kwargs: Any) -> None:
        build(self, *args, **kwargs)
        mark("bot built")

    runtime.KleinstadtBot.__init__ = built  # type: ignore[method-assign]
    after(Database, "open", "database open")
    after(Membership, "load", "joins loaded")
    after(runtime.KleinstadtBot, "_connect", "logged in")
    after(runtime.KleinstadtBot, "_prepare", "set-up done")
    around(nio.AsyncClient, "sync", "sync sent", "sync back")
    around(nio.AsyncClient, "room_send", "send started", "send accepted")
    from bot.cli import main as bot_main

    try:
        return bot_main(argv)
    finally:
        resume_collector("the command ended")
        code_cache.finish("the command ended")


def summary(out: str) -> None:
    """When each step first came: in the first start in ``out`` (a peerbench run's first
    launch), and the median over the others (its warm restarts)."""
    firsts: dict[str, dict[str, tuple[float, float]]] = {}  # by process, in launch order
    order: list[str] = []
    for line in Path(out).read_text().splitlines():
        pid, wall, cpu, step = line.split("\t")
        steps = firsts.setdefault(pid, {})
        if step not in steps:
            steps[step] = (float(wall), float(cpu))
            if step not in order:
                order.append(step)
    first, *restarts = firsts.values()
    print(f"seconds from the launch, wall (CPU); restarts: the median of {len(restarts)}")
    print("| step | first start | restarts |\n|---|---:|---:|")
    for step in order:
        cells = []
        for starts in ([first], restarts):
            times = [steps[step] for steps in starts if step in steps]
            walls, cpus = [t[0] for t in times], [t[1] for t in times]
            cells.append(f"{statistics.median(walls):.3f} ({statistics.median(cpus):.3f})" if times else "")
        print(f"| {step} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
