"""The bot presents itself with the display name and avatar from the settings: set at start
where the profile differs, the image uploaded once (its mxc:// URI kept in the database)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    DownloadResponse,
    ProfileGetError,
    ProfileGetResponse,
    ProfileSetAvatarResponse,
    ProfileSetDisplayNameResponse,
    UploadResponse,
)

from bot.profile import present_bot
from config.settings import DEFAULT_AVATAR, Settings
from storage.runtime_state import RuntimeStateRepository
from tests.local_bot import migrated_database

NAME = "Kleinstadtakademie"


@dataclass
class FakeProfileClient:
    """The four profile calls of nio, against a profile in memory; uploads are counted."""

    user_id: str = "@kleinstadtbot:localhost"
    displayname: str | None = None
    avatar_url: str | None = None
    uploads: list[bytes] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)

    async def get_profile(self, user_id: str) -> Any:
        if self.displayname is None and self.avatar_url is None:
            return ProfileGetError("no profile", "M_NOT_FOUND")
        return ProfileGetResponse(self.displayname, self.avatar_url)

    async def set_displayname(self, name: str) -> Any:
        self.displayname = name
        self.sets.append("name")
        return ProfileSetDisplayNameResponse()

    async def set_avatar(self, url: str) -> Any:
        self.avatar_url = url
        self.sets.append("avatar")
        return ProfileSetAvatarResponse()

    async def upload(self, data: Any, content_type: str, filename: str, filesize: int) -> Any:
        assert content_type == "image/png" and filesize == len(data.getvalue())
        self.uploads.append(data.getvalue())
        return UploadResponse(f"mxc://localhost/upload{len(self.uploads)}"), None


@pytest.fixture
async def repo(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    yield RuntimeStateRepository(db)
    await db.close()


async def present(client: FakeProfileClient, repo: RuntimeStateRepository, **settings: Any) -> None:
    await present_bot(client, Settings(**settings), repo)


async def test_name_and_shipped_avatar_are_set_and_the_image_is_uploaded_once(repo):
    client = FakeProfileClient()
    await present(client, repo)
    assert client.displayname == NAME and client.avatar_url == "mxc://localhost/upload1"
    assert client.uploads == [DEFAULT_AVATAR.read_bytes()]
    client.sets.clear()
    await present(client, repo)  # the next start: nothing differs, nothing is sent
    assert client.sets == [] and len(client.uploads) == 1
    client.displayname, client.avatar_url = "kleinstadtbot", "mxc://localhost/by-hand"
    await present(client, repo)  # changed by hand: set back, with the image uploaded before
    assert client.displayname == NAME and client.avatar_url == "mxc://localhost/upload1"
    assert len(client.uploads) == 1


async def test_a_new_image_is_uploaded_and_none_leaves_the_profile_alone(repo, tmp_path):
    client = FakeProfileClient()
    await present(client, repo)
    other = tmp_path / "wappen.png"
    other.write_bytes(DEFAULT_AVATAR.read_bytes() + b"\0")  # a different file
    await present(client, repo, avatar=other, display_name="Kleinstadtakademie Nord")
    assert client.avatar_url == "mxc://localhost/upload2" and client.displayname == "Kleinstadtakademie Nord"
    client.sets.clear()
    client.displayname, client.avatar_url = "von Hand", "mxc://localhost/von-hand"
    await present(client, repo, avatar=None, display_name=None)
    assert client.sets == [] and (client.displayname, client.avatar_url) == (
        "von Hand",
        "mxc://localhost/von-hand",
    )


async def test_a_refusing_homeserver_does_not_stop_the_bot(repo, caplog):
    client = FakeProfileClient()

    async def refuse(name: str) -> Any:
        from nio import ProfileSetDisplayNameError

        return ProfileSetDisplayNameError("too many requests", "M_LIMIT_EXCEEDED")

    client.set_displayname = refuse  # type: ignore[method-assign]
    await present(client, repo)  # no exception
    assert "could not set the bot's display name" in caplog.text


# --- through Synapse ------------------------------------------------------------------------


async def _profile_becomes(client: AsyncClient, user_id: str, name: str, avatar: str | None = None) -> str:
    """Wait until the profile shows ``name`` (and ``avatar``, if given); returns the avatar URL."""
    for _ in range(300):
        profile = await client.get_profile(user_id)
        url = getattr(profile, "avatar_url", None) or ""
        shown = isinstance(profile, ProfileGetResponse) and profile.displayname == name
        if shown and url.startswith("mxc://") and avatar in (None, url):
            return url
        await asyncio.sleep(0.1)
    raise AssertionError(f"profile of {user_id} did not become {name!r} / {avatar!r}: {profile}")


@pytest.mark.synapse
async def test_element_sees_the_academy_name_and_avatar_after_start(make_bot, make_user, synapse):
    bot = await make_bot()
    mayor = await make_user("mayor")
    first = await _profile_becomes(mayor.client, bot.user_id, NAME)
    media = await mayor.client.download(mxc=first)
    assert isinstance(media, DownloadResponse) and media.body == DEFAULT_AVATAR.read_bytes()
    # someone changes the bot's profile by hand while it is down
    await bot.stop()
    by_hand = AsyncClient(synapse.url, bot.user_id)
    by_hand.restore_login(bot.user_id, bot.account.device_id, bot.account.access_token)
    try:
        await by_hand.set_displayname("kleinstadtbot")
        await by_hand.set_avatar("mxc://localhost/elsewhere")
    finally:
        await by_hand.close()
    # the next start sets both back, with the image uploaded at the first start (same mxc URI)
    await make_bot(account=bot.account, data=Path(bot.settings.database).parent)
    assert await _profile_becomes(mayor.client, bot.user_id, NAME, avatar=first) == first
