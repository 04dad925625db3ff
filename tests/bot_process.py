"""The bot as its own process, as the installed ``kleinstadtbot`` runs it (``bot.launch``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    """This environment without ``KLEINSTADTBOT_*``: the configuration file alone counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}


def write_config(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def account_config(folder: Path, synapse: Any, account: Any, **values: Any) -> Path:
    """``folder/bot.yaml`` for ``account`` on ``synapse``, its database in ``folder/bot``; ``values``
    add to or replace the settings."""
    return write_config(
        folder / "bot.yaml",
        {
            "homeserver": synapse.url,
            "user_id": account.user_id,
            "password": account.password,
            "database": str(folder / "bot" / "bot.db"),
            **values,
        },
    )


async def run_process(config: Path, log_file: Path, **env: str) -> asyncio.subprocess.Process:
    """``kleinstadtbot run --config …`` as its own process, its output appended to ``log_file``;
    ``env`` adds to its environment."""
    with log_file.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.launch", "run", "--config", str(config),
            cwd=ROOT, env={**clean_env(), **env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
