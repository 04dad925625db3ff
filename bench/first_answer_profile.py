"""``kleinstadtbot`` under cProfile (CPU time) until its first answer is sent.

The statistics are written the moment the first message the bot sends is accepted by the
homeserver, so they hold what the first answer costs (imports, settings, database, login, the
first sync, rendering) and nothing of the run after it. Nothing is imported before the profiler
starts, so the imports count too. cProfile sees the main thread only; ``OUT.threads`` lists the
CPU seconds of every thread of the process at that moment (aiosqlite's worker, say). Used by
``bench/startup.py --profile``; by hand, or as the launch command of a peerbench run (a warm
restart, say)::

    python bench/first_answer_profile.py OUT.prof run --config kb.yaml

Read it with ``python -m pstats OUT.prof`` or ``bench.common.top``.
"""

import cProfile
import os
import sys
import time
from pathlib import Path
from typing import Any


def thread_cpu() -> str:
    """Each thread's name and CPU seconds (user + system), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    lines = []
    for task in sorted(Path("/proc/self/task").iterdir(), key=lambda p: int(p.name)):
        with open(task / "stat") as f:
            stat = f.read()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        lines.append(f"{task.name} {name} {(int(fields[11]) + int(fields[12])) / tick:.2f}")
    return "\n".join(lines) + "\n"


def main(out: str, argv: list[str]) -> int:
    profile = cProfile.Profile(time.process_time)  # CPU: waits and other processes do not count
    profile.enable()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bot import sending

    send_content = sending.MessageSender.send_content

    async def first_sent(self: sending.MessageSender, *args: Any, **kwargs: Any) -> str | None:
        event_id = await send_content(self, *args, **kwargs)
        if event_id is not None and sending.MessageSender.send_content is not send_content:
            profile.disable()
            profile.dump_stats(out)
            Path(out + ".threads").write_text(thread_cpu())
            sending.MessageSender.send_content = send_content  # type: ignore[method-assign]
        return event_id

    sending.MessageSender.send_content = first_sent  # type: ignore[method-assign]
    from bot.cli import main as bot_main

    return bot_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
