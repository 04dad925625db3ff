"""Shared fixtures. ``local_bot``: a bot without a homeserver, for fast tests."""

from __future__ import annotations

import pytest

from tests.local_bot import LocalBot, make_local_bot


@pytest.fixture
async def local_bot(tmp_path, monkeypatch) -> LocalBot:
    for key in list(__import__("os").environ):
        if key.startswith("KLEINSTADTBOT_"):
            monkeypatch.delenv(key)
    bot = await make_local_bot(tmp_path)
    yield bot
    await bot.db.close()
