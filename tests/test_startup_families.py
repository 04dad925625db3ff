"""The runtime starts with the first command family only (``commands.load_families(first=True)``):
``!ping`` is answered without importing the others, and every other command, help, plain text
and reactions are answered exactly as with all families loaded.

Each bot runs in its own interpreter: which modules are imported is process-wide, and the test
session has imported every family long before."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = textwrap.dedent(
    """
    import asyncio, functools, json, sys
    from pathlib import Path

    import bot.app

    bot.app.build_dispatcher = functools.partial(bot.app.build_dispatcher, first_families={first})
    from commands import FAMILIES, FIRST
    from commands.context import Reaction
    from tests.local_bot import make_local_bot

    def others_imported():
        return sorted(m for m in FAMILIES if m not in FIRST and m in sys.modules)

    async def main():
        local = await make_local_bot(Path(sys.argv[1]))
        out = {{"others_at_start": others_imported(), "answers": {{}}}}
        for body in {commands!r}:
            out["answers"][body] = await local.text(body)
            if body == "!ping":
                out["others_after_ping"] = others_imported()
        reaction = Reaction("@buergermeisterin:localhost", "!dm:localhost", "$r1", "$none", "👍", 0)
        out["reaction_taken"] = await local.dispatcher.react(reaction)
        out["others_at_end"] = others_imported()
        await local.db.close()
        print(json.dumps(out))

    asyncio.run(main())
    """
)
COMMANDS = [
    "!ping",
    "!berechtigt Mustertal",  # a command of a family not imported yet
    "!hilfe",  # the list of every family's commands
    "!hilfe tandem",
    "!gibtsnicht",  # unknown: suggestions from every family
    "Wie finde ich eine Tandempartnerin?",  # plain text in a direct chat (the FAQ)
]


def run(tmp_path: Path, first: bool) -> dict:
    folder = tmp_path / ("first" if first else "all")
    folder.mkdir()
    code = SCRIPT.format(first=first, commands=COMMANDS)
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_family_answers_ping_alone_and_the_rest_load_on_demand(tmp_path):
    first, everything = run(tmp_path, first=True), run(tmp_path, first=False)
    assert first["others_at_start"] == [] and first["others_after_ping"] == []
    assert "Pong" in first["answers"]["!ping"]
    assert first["others_at_end"] == everything["others_at_end"] != []
    assert first["answers"] == everything["answers"]
    assert first["reaction_taken"] == everything["reaction_taken"]
    # not vacuous: the commands of other families got their real answers, not "unknown command"
    assert first["answers"]["!berechtigt Mustertal"] != first["answers"]["!gibtsnicht"]
    assert len(first["answers"]["!hilfe"]) > 3 * len(first["answers"]["!ping"])
