"""Login: an access token, or a password once and then the same device for the bot's whole life.

After a password login the device ID and access token are stored in the database and reused
with ``restore_login``; the bot never logs out, so its device and encryption keys survive
restarts.
"""

from __future__ import annotations

import asyncio
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
                raise LoginFailed("access_token was refused by the homeserver")
            if not device_id:
                raise LoginFailed("the access token has no device; set device_id in the config")
        client.restore_login(settings.user_id, device_id, token)
        return "token"

    session = await repo.load_session(settings.user_id, settings.homeserver)
    if session is not None:
        client.restore_login(session.user_id, session.device_id, session.access_token)
        if await _whoami(client) is not None:
            return "restored"
        log.warning("stored access token no longer valid; logging in again with device %s", session.device_id)
    client.device_id = session.device_id if session else settings.device_id
    assert settings.password is not None
    response = await client.login(settings.password.get_secret_value(), device_name=settings.device_name)
    if isinstance(response, LoginError):
        if response.status_code in ("M_FORBIDDEN", "M_USER_DEACTIVATED", "M_INVALID_PARAM"):
            raise LoginFailed(f"password login refused: {response.status_code}")
        raise TransientLoginError(f"{response.status_code}: {response.message}")
    await repo.save_session(
        Session(response.user_id, response.device_id, response.access_token, settings.homeserver)
    )
    log.info("logged in as %s with device %s", response.user_id, response.device_id)
    return "password"


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
