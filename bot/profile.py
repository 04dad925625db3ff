"""How the bot presents itself: its display name and avatar from the settings.

``present_bot`` runs once after start, beside the sync loop (so the first answer does not wait
for it). It reads the bot's profile from the homeserver and changes only what differs from the
settings. The image is uploaded once: its SHA-256 and the mxc:// URI the homeserver gave it are
kept in the database, so later starts reuse the URI, and a different image is uploaded anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging

from nio import AsyncClient, ErrorResponse, UploadResponse

from config.settings import AVATAR_TYPES, Settings
from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)


async def present_bot(client: AsyncClient, settings: Settings, repo: RuntimeStateRepository) -> None:
    """Set display name and avatar where they differ from the settings. Never raises: a bot
    with the wrong name still answers; the next start tries again."""
    try:
        await _present(client, settings, repo)
    except Exception:
        log.exception("could not set the bot's display name or avatar")


async def _present(client: AsyncClient, settings: Settings, repo: RuntimeStateRepository) -> None:
    profile = await client.get_profile(client.user_id)
    if isinstance(profile, ErrorResponse):
        # a bot without a profile yet (M_NOT_FOUND) gets one; anything else: try next start
        if profile.status_code != "M_NOT_FOUND":
            log.warning("cannot read the bot's profile: %s %s", profile.status_code, profile.message)
            return
        current_name, current_avatar = None, None
    else:
        current_name, current_avatar = profile.displayname, profile.avatar_url
    if settings.display_name is not None and settings.display_name != current_name:
        _check(await client.set_displayname(settings.display_name), "setting the display name")
        log.info("display name set to %r", settings.display_name)
    if settings.avatar is not None:
        mxc = await _uploaded(client, settings, repo)
        if mxc != current_avatar:
            _check(await client.set_avatar(mxc), "setting the avatar")
            log.info("avatar set to %s (%s)", mxc, settings.avatar.name)


async def _uploaded(client: AsyncClient, settings: Settings, repo: RuntimeStateRepository) -> str:
    """The mxc:// URI of the configured image, uploading it only if it changed since."""
    assert settings.avatar is not None
    data = await asyncio.to_thread(settings.avatar.read_bytes)
    digest = hashlib.sha256(data).hexdigest()
    stored = await repo.uploaded_avatar()
    if stored is not None and stored[0] == digest:
        return stored[1]
    response, _ = await client.upload(
        io.BytesIO(data),
        content_type=AVATAR_TYPES[settings.avatar.suffix.lower()],
        filename=settings.avatar.name,
        filesize=len(data),
    )
    if not isinstance(response, UploadResponse):
        raise RuntimeError(f"uploading the avatar: {response}")
    await repo.save_uploaded_avatar(digest, response.content_uri)
    log.info("avatar %s uploaded: %s", settings.avatar.name, response.content_uri)
    return response.content_uri


def _check(response: object, what: str) -> None:
    if isinstance(response, ErrorResponse):
        raise RuntimeError(f"{what}: {response.status_code} {response.message}")
