"""The floor under start-up time and memory: what importing the bot's parts costs, step by step.

Each line is a fresh interpreter that imports everything of the lines above it plus its own
modules and prints its resident memory (RSS) and CPU time; the least CPU of ``--repeat`` runs
is shown (other processes on a shared machine only add to it), and what the line adds. The
encrypted nio floor of ``bench/peers.sh`` imports what the second line does; kleinstadtbot
imports every line up to the one marked "before the first answer" before it answers, and the
last line once its first answers are out (``bot.runtime``).

    .venv/bin/python bench/import_floor.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = [
    ("python, asyncio, logging", "import asyncio, logging"),
    ("nio with encryption (the encrypted floor)", "import nio, nio.store"),
    ("pydantic", "import pydantic"),
    ("pydantic-settings (its sources: dotenv, CLI, cloud secrets)", "import pydantic_settings"),
    ("the settings model", "import config.settings"),
    ("the runtime: aiosqlite, bot.*", "import bot.cli, bot.logs, bot.runtime"),
    (
        "rendering (Jinja2, Babel), the first command family: all before the first answer",
        "import bot.app; from commands import load_families; load_families(first=True)",
    ),
    (
        "after the first answers: the scheduler, the other families, the migrations",
        "import bot.scheduler; from storage.database import discover_migrations; "
        "load_families(); discover_migrations()",
    ),
]
PROBE = """
import time
{imports}
cpu = time.process_time()
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))
print(__import__("json").dumps({{"cpu_ms": cpu * 1000, "rss_mb": rss / 1024}}))
"""


def measure(imports: list[str], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        code = PROBE.format(imports="\n".join(imports))
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout))
    return min(r["cpu_ms"] for r in runs), statistics.median(r["rss_mb"] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| imported (each line adds to those above) | CPU ms (least) | RSS MB | adds ms | adds MB |")
    print("|---|---:|---:|---:|---:|")
    done: list[str] = []
    last_cpu = last_rss = 0.0
    for label, statement in STEPS:
        done.append(statement)
        cpu, rss = measure(done, args.repeat)
        print(
            f"| {label} | {cpu:.0f} | {rss:.1f} | {cpu - last_cpu:+.0f} | {rss - last_rss:+.1f} |",
            flush=True,
        )
        last_cpu, last_rss = cpu, rss
    return 0


if __name__ == "__main__":
    sys.exit(main())
