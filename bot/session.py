"""Login: an access token, or a password once and then the same device for the bot's whole life.

After a password login the device ID and access token are stored in the database and reused
with ``restore_login``; the bot never logs out, so its device and encryption keys survive
restarts. When the homeserver no longer knows the stored token (at start or while running),
the bot logs in with the password again on the same device ID. If the session was signed out,
the device's encryption keys are gone with it and other clients remember the device as deleted:
then the bot continues on a new device, which gets room keys again.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import ClientError
from nio import AsyncClient, LoginError, WhoamiError
from nio.exceptions import LocalProtocolError

from bot.backoff import Backoff, pause
from config.settings import Settings
from storage.runtime_state import RuntimeStateRepository, Session

log = logging.getLogger(__name__)


class LoginFailed(Exception):
    """Credentials were refused: retrying will not help."""


class TransientLoginError(Exception):
    """The homeserver could not be asked: retry with backoff."""


async def _whoami(client: AsyncClient) -> str | None:
    """The device of the current token; None when the token is unknown."""
    response = await client.whoami()
    if isinstance(response, WhoamiError):
        if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN"):
            return None
        raise TransientLoginError(f"{response.status_code}: {response.message}")
    return response.device_id or ""


async def login(client: AsyncClient, settings: Settings, repo: RuntimeStateRepository) -> str:
    """Log ``client`` in; returns how ("token", "restored" or "password")."""
    assert settings.user_id and settings.homeserver
    if settings.access_token is not None:
        token = settings.access_token.get_secret_value()
        device_id = settings.device_id
        if not device_id:
            client.user_id, client.access_token = settings.user_id, token
            device_id = await _whoami(client)
            if device_id is None:
                raise LoginFailed(
                    "the homeserver refused the configured access_token; "
                    "put a valid one into the configuration"
                )
            if not device_id:
                raise LoginFailed("the access token has no device; set device_id in the configuration")
        client.restore_login(settings.user_id, device_id, token)
        return "token"

    session = await repo.load_session(settings.user_id, settings.homeserver)
    if session is not None:
        client.restore_login(session.user_id, session.device_id, session.access_token)
        if await _whoami(client) is not None:
            return "restored"
        log.warning("stored access token no longer valid; logging in again with device %s", session.device_id)
    await _password_login(client, settings, session.device_id if session else settings.device_id)
    if session is not None and client.olm is not None and not await _device_keys_kept(client):
        # Signed out: the login made the device again, but without its keys, and other
        # clients remember it as deleted. Only a new device gets room keys again.
        log.warning(
            "device %s was signed out and its encryption keys deleted; continuing on a new device "
            "(messages encrypted for the old one stay unreadable)",
            client.device_id,
        )
        await client.logout()
        encrypted_rooms = set(client.encrypted_rooms)
        client.store, client.olm = None, None  # nio loads a store once: the new device needs its own
        await _password_login(client, settings, None)
        if client.store is not None:  # which rooms are encrypted holds for every device
            client.encrypted_rooms.update(encrypted_rooms)
            client.store.save_encrypted_rooms(encrypted_rooms)
        if client.olm is not None:  # the new device knows no one's keys: ask with the next upkeep
            for room in client.rooms.values():
                if room.encrypted:
                    client.olm.update_tracked_users(room)
    await repo.save_session(
        Session(client.user_id, client.device_id, client.access_token, settings.homeserver)
    )
    log.info("logged in as %s with device %s", client.user_id, client.device_id)
    return "password"


async def _password_login(client: AsyncClient, settings: Settings, device_id: str | None) -> None:
    client.device_id = device_id
    assert settings.password is not None
    response = await client.login(settings.password.get_secret_value(), device_name=settings.device_name)
    if isinstance(response, LoginError):
        if response.status_code in ("M_FORBIDDEN", "M_USER_DEACTIVATED", "M_INVALID_PARAM"):
            raise LoginFailed(
                f"the homeserver refused the password for {settings.user_id} ({response.status_code}); "
                "check user_id and password in the configuration"
            )
        raise TransientLoginError(f"{response.status_code}: {response.message}")


async def _device_keys_kept(client: AsyncClient) -> bool:
    """Whether the homeserver still holds the identity keys of the client's device."""
    response = await client.send(
        "POST",
        "/_matrix/client/v3/keys/query",
        data=json.dumps({"device_keys": {client.user_id: [client.device_id]}}),
        headers={"Authorization": f"Bearer {client.access_token}", "Content-Type": "application/json"},
    )
    async with response:
        if response.status != 200:
            raise TransientLoginError(f"keys query: HTTP {response.status}")
        body = await response.json()
    return client.device_id in ((body.get("device_keys") or {}).get(client.user_id) or {})


async def connect(
    client: AsyncClient,
    settings: Settings,
    repo: RuntimeStateRepository,
    backoff: Backoff,
    stop: asyncio.Event,
) -> bool:
    """Log in, retrying with back-off while the homeserver cannot be asked. False when ``stop``
    was set first; refused credentials raise ``LoginFailed``."""
    while not stop.is_set():
        try:
            how = await login(client, settings, repo)
        except (TransientLoginError, TimeoutError, OSError, ClientError, LocalProtocolError) as exc:
            await pause(backoff.failed(str(exc) or type(exc).__name__), stop)
            continue
        backoff.succeeded()
        log.info(
            "connected to %s as %s (device %s, %s)",
            settings.homeserver,
            client.user_id,
            client.device_id,
            how,
        )
        return True
    return False
