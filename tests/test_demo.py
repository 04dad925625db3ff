"""``kleinstadtbot demo`` as a user runs it: homeserver up, credentials work, the bot answers,
and Ctrl-C stops both the bot and the homeserver."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from bot.homeserver import free_port

pytestmark = pytest.mark.synapse


def _wait_for_line(process: subprocess.Popen, text: str, timeout: float = 90) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed; output:\n{''.join(seen)}")


async def test_demo_runs_answers_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--data", str(tmp_path / "demo"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        printed = "".join(await asyncio.to_thread(_wait_for_line, process, "kleinstadtbot ready"))
        assert f"http://127.0.0.1:{port}" in printed
        accounts = json.loads((tmp_path / "demo" / "accounts.json").read_text())
        mayor = accounts["buergermeisterin-a"]
        assert mayor["password"] in printed  # the credentials are shown to log in with
        client = AsyncClient(
            f"http://127.0.0.1:{port}",
            mayor["user_id"],
            config=AsyncClientConfig(max_limit_exceeded=3, max_timeouts=3),
        )
        try:
            assert isinstance(await client.login(mayor["password"]), LoginResponse)
            room = (
                await client.room_create(invite=[accounts["kleinstadtbot"]["user_id"]], is_direct=True)
            ).room_id
            sent = await client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "!ping"})
            answer = None
            for _ in range(100):
                messages = await client.room_messages(room, start="", limit=20)
                answer = next((e for e in messages.chunk if getattr(e, "body", "").startswith("🏓")), None)
                if answer:
                    break
                await asyncio.sleep(0.2)
            assert answer is not None
            relates = answer.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
            assert relates == sent.event_id
        finally:
            await client.close()
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 30) == 0
        pid_file = tmp_path / "demo" / "synapse" / "homeserver.pid"
        if pid_file.exists():  # Synapse removes it on a clean stop; if not, the PID must be gone
            pid = int(pid_file.read_text())
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
