"""The encrypted nio floor for ``bench/peers.sh``: the least an nio bot with encryption costs.

A bare ``nio.AsyncClient`` with encryption on and its store in ``DATA_DIR`` (as kleinstadtbot
runs in production), the default ``sync_forever`` without a filter, answering every message
that starts with ``!`` and arrived after its start with an ``m.notice`` of the same text. It
imports nothing but nio, so its memory is the interpreter, aiohttp, nio and its encryption.

    python bench/floor_e2e.py HOMESERVER USER_ID ACCESS_TOKEN DEVICE_ID DATA_DIR
"""

import time

STARTED_MS = int(time.time() * 1000)  # before the imports: commands sent after this are answered

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from nio import AsyncClient, AsyncClientConfig, MatrixRoom, RoomMessageText  # noqa: E402


async def main() -> None:
    homeserver, user_id, token, device_id, data_dir = sys.argv[1:6]
    store = Path(data_dir) / "floor-store"
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        homeserver,
        user_id,
        device_id=device_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
    )
    client.restore_login(user_id, device_id, token)
    cutoff_ms = STARTED_MS - 1000

    async def on_message(room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender == user_id or event.server_timestamp < cutoff_ms or not event.body.startswith("!"):
            return
        await client.room_send(
            room.room_id,
            "m.room.message",
            {"msgtype": "m.notice", "body": event.body},
            ignore_unverified_devices=True,
        )

    client.add_event_callback(on_message, RoomMessageText)
    try:
        await client.sync_forever(timeout=30000)
    finally:
        await client.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
