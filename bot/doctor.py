"""``kleinstadtbot doctor``: checks a real installation against its homeserver.

One line per check, ✓ or ✗ with what to do (``?`` where the doctor cannot tell, ``–`` where a
check could not run because an earlier one failed); ``--json`` for machines; the exit status is
non-zero when any check fails. The doctor reads and asks, it changes nothing: the database and
the crypto store are opened read-only, and a password is tried only where the bot has no stored
session yet (that test login's device is deleted again at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.roles import COORDINATOR_LEVEL, power_level, privileged_creators
from config.settings import ConfigError, Settings, load_settings
from storage.backups import check_database

log = logging.getLogger(__name__)

OK, FAIL, UNKNOWN, SKIPPED = "ok", "fail", "unknown", "skipped"
SYMBOLS = {OK: "✓", FAIL: "✗", UNKNOWN: "?", SKIPPED: "–"}
TIMEOUT = aiohttp.ClientTimeout(total=20)
ROOM_CHECKS_AT_ONCE = 8
# what the bot does in a tandem room after creating it, and the power-level key that rules it
TANDEM_NEEDS = {
    "send messages (check-ins, answers)": ("events", "m.room.message"),
    "react (check-in buttons)": ("events", "m.reaction"),
    "invite members": ("invite", None),
    "remove members (a failed set-up)": ("kick", None),
}
SPACE_NEEDS = {
    "add rooms to the Space": ("events", "m.space.child"),
    "invite to the Space": ("invite", None),
}


@dataclass
class Check:
    name: str
    status: str
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{SYMBOLS[self.status]} {self.name}: {self.message}"
        return f"{text}\n    → {self.fix}" if self.fix and self.status != OK else text


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, message: str, fix: str = "") -> Check:
        check = Check(name, status, message, fix)
        self.checks.append(check)
        return check

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def text(self) -> str:
        failed = sum(c.status == FAIL for c in self.checks)
        summary = f"{failed} check(s) failed" if failed else "all checks passed"
        return "\n".join([*(c.line() for c in self.checks), summary])

    def json(self) -> str:
        return json.dumps(
            {"ok": not self.failed, "checks": [asdict(c) for c in self.checks]}, ensure_ascii=False, indent=2
        )


class HomeserverError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(f"HTTP {status} {body.get('errcode', '')} {body.get('error', '')}".strip())
        self.status = status
        self.errcode = str(body.get("errcode") or "")


class Homeserver:
    """The few client-server requests the doctor makes, with a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None = None):
        self.session = session
        self.url = url
        self.token = token

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        async with self.session.request(method, self.url + path, json=body, headers=headers) as response:
            try:
                data = await response.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            if not isinstance(data, dict):
                data = {"value": data}
            if response.status != 200:
                raise HomeserverError(response.status, data)
            return data

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/{quote(event_type, safe='')}"
        try:
            return await self.request("GET", f"{path}/{quote(state_key, safe='')}")
        except HomeserverError as exc:
            if exc.errcode == "M_NOT_FOUND":
                return None
            raise

    async def create_event(self, room_id: str) -> dict[str, Any] | None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.create/?format=event"
        body = await self.request("GET", path)
        return body if "content" in body else {"content": body, "sender": body.get("creator")}

    async def joined(self, room_id: str) -> list[str]:
        body = await self.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members")
        return list((body.get("joined") or {}).keys())

    async def resolve(self, room: str) -> str:
        if not room.startswith("#"):
            return room
        body = await self.request("GET", f"/_matrix/client/v3/directory/room/{quote(room, safe='')}")
        return str(body["room_id"])


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def stored_session(settings: Settings) -> dict[str, Any] | None:
    """The session the bot keeps after a password login (``bot_state``), read-only."""
    if not settings.database.is_file():
        return None
    try:
        conn = _read_only(settings.database)
        try:
            row = conn.execute("SELECT value FROM bot_state WHERE key = 'session'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if not row:
        return None
    data = json.loads(row[0])
    if data.get("user_id") != settings.user_id or data.get("homeserver") != settings.homeserver:
        return None
    return dict(data)


def tandem_rooms(settings: Settings) -> list[tuple[int, str]]:
    """(number, room ID) of the running and paused tandems, from the database (read-only)."""
    if not settings.database.is_file():
        return []
    try:
        conn = _read_only(settings.database)
        try:
            rows = conn.execute(
                "SELECT id, room_id FROM tandems WHERE state IN ('active', 'paused') AND room_id IS NOT NULL "
                "ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [(int(r[0]), str(r[1])) for r in rows]


def recorded_space(settings: Settings) -> str | None:
    if not settings.database.is_file():
        return None
    try:
        conn = _read_only(settings.database)
        try:
            row = conn.execute("SELECT room_id FROM academy_space").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row and row[0] else None


def required_level(levels: dict[str, Any], kind: str, event_type: str | None) -> int:
    """The power a user needs in a room for ``kind`` (``events`` of ``event_type``, ``invite``,
    ``kick``), by the spec's defaults where the power levels leave it out."""

    def number(value: Any, default: int) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    if kind == "events":
        assert event_type is not None
        events = levels.get("events") or {}
        if event_type in events:
            return number(events[event_type], 0)
        state = event_type.startswith("m.space.") or event_type in ("m.room.topic", "m.room.name")
        return number(levels.get("state_default" if state else "events_default"), 50 if state else 0)
    return number(levels.get(kind), 0 if kind == "invite" else 50)


async def power_shortfalls(
    hs: Homeserver, room_id: str, user_id: str, needs: dict[str, tuple[str, str | None]]
) -> tuple[float, list[str]]:
    """The bot's power in ``room_id`` and what it may not do there (``what (needs N)``)."""
    create = await hs.create_event(room_id)
    creators = privileged_creators(create or {})
    levels = await hs.state(room_id, "m.room.power_levels") or {}
    mine = power_level(user_id, levels, creators)
    short = [
        f"{what} (needs {level})"
        for what, (kind, event_type) in needs.items()
        if mine < (level := required_level(levels, kind, event_type))
    ]
    return mine, short


def shown_power(value: float) -> str:
    return "unlimited (room creator)" if math.isinf(value) else str(int(value))


class Doctor:
    def __init__(self, settings: Settings, admin_token: str | None = None):
        self.settings = settings
        self.admin_token = admin_token
        self.report = Report()
        self.hs: Homeserver | None = None  # with a working token, once credentials passed
        self.device_id: str | None = None
        self.temporary_token: str | None = None  # a test login's, logged out at the end

    async def run(self) -> Report:
        await self._local()
        if self.settings.problems_for_run():
            for name in (
                "homeserver",
                "credentials",
                "crypto store",
                "coordination",
                "space",
                "tandem rooms",
            ):
                self.report.add(name, SKIPPED, "not checked: the configuration is incomplete")
            return self.report
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            assert self.settings.homeserver
            self.hs = Homeserver(session, self.settings.homeserver)
            if not await self._step("homeserver", self._homeserver):
                for name in ("credentials", "crypto store", "coordination", "space", "tandem rooms"):
                    self.report.add(name, SKIPPED, "not checked: the homeserver cannot be reached")
                return self.report
            if not await self._step("credentials", self._credentials):
                for name in ("crypto store", "coordination", "space", "tandem rooms", "rate limit"):
                    self.report.add(name, SKIPPED, "not checked: the bot cannot log in")
                return self.report
            try:
                for name, step in (
                    ("crypto store", self._crypto_store),
                    ("coordination", self._coordination),
                    ("space", self._space),
                    ("tandem rooms", self._tandem_rooms),
                    ("rate limit", self._rate_limit),
                ):
                    await self._step(name, step)
            finally:
                await self._log_out_temporary()
        return self.report

    async def _step(self, name: str, step: Callable[[], Awaitable[Check]]) -> bool:
        try:
            check = await step()
        except (aiohttp.ClientError, TimeoutError) as exc:
            check = self.report.add(
                name,
                FAIL,
                f"the homeserver did not answer ({type(exc).__name__}: {exc})",
                "check that the homeserver runs and that this machine reaches it",
            )
        except HomeserverError as exc:
            check = self.report.add(name, FAIL, f"the homeserver refused: {exc}", "see the message")
        return check.status != FAIL

    # --- local ---------------------------------------------------------------------------------

    async def _local(self) -> None:
        from bot.app import check_rhythms

        settings, report = self.settings, self.report
        problems = settings.problems_for_run()
        try:
            check_rhythms(settings)
        except ConfigError as exc:
            problems += exc.problems
        if problems:
            report.add("configuration", FAIL, "; ".join(problems), "fix these settings (config/example.yaml)")
        else:
            report.add(
                "configuration",
                OK,
                f"{settings.user_id} on {settings.homeserver}, database {settings.database}",
            )
        check = check_database(settings.database)
        if not settings.database.exists():
            report.add("database", OK, f"{settings.database} does not exist yet: created at the first start")
        elif check.ok:
            report.add("database", OK, check.summary())
        else:
            report.add(
                "database",
                FAIL,
                check.summary(),
                "restore a backup (kleinstadtbot db restore FILE, with the bot stopped)",
            )
        from commands.faq_search import content_root, load_library

        root = content_root(settings)
        library = await asyncio.to_thread(load_library, root)
        if library.problems:
            shown = "; ".join(str(p) for p in library.problems[:3])
            report.add(
                "content",
                FAIL,
                f"{len(library.problems)} problem(s) in {root}: {shown}",
                "fix them; kleinstadtbot content check lists them all",
            )
        else:
            faq = sum(len(entries) for entries in library.content.faq.values())
            modules = sum(len(found) for found in library.content.modules.values())
            report.add("content", OK, f"{faq} FAQ entries and {modules} modules in {root}")

    # --- homeserver ------------------------------------------------------------------------------

    async def _homeserver(self) -> Check:
        assert self.hs is not None
        versions = await self.hs.request("GET", "/_matrix/client/versions")
        spec = versions.get("versions") or []
        server = ""
        try:
            body = await self.hs.request("GET", "/_synapse/admin/v1/server_version")
            server = f", Synapse {body.get('server_version')}"
        except (HomeserverError, aiohttp.ClientError):
            pass  # not Synapse, or the admin API is not exposed: fine
        newest = spec[-1] if spec else "none"
        if "v1.1" not in spec and not any(v.startswith("v1.") for v in spec):
            return self.report.add(
                "homeserver",
                FAIL,
                f"{self.settings.homeserver} answers but offers no Matrix v1 client API ({spec})",
                "check `homeserver`: it must be the client-server URL",
            )
        return self.report.add(
            "homeserver", OK, f"{self.settings.homeserver} reachable; client API up to {newest}{server}"
        )

    async def _credentials(self) -> Check:
        assert self.hs is not None
        settings = self.settings
        if settings.access_token is not None:
            token, how = settings.access_token.get_secret_value(), "access_token"
        else:
            session = stored_session(settings)
            if session is None:
                return await self._password_once()
            token, how = session["access_token"], "the session stored after the password login"
        try:
            me = await self.hs.request("GET", "/_matrix/client/v3/account/whoami", token=token)
        except HomeserverError as exc:
            if exc.status in (401, 403):
                if settings.access_token is None:
                    return await self._password_once(expired=True)
                return self.report.add(
                    "credentials",
                    FAIL,
                    f"the homeserver refuses the access token ({exc.errcode})",
                    "create a new access token for the bot's device and set access_token "
                    "(docs/operations.md: rotate the access token)",
                )
            raise
        if me.get("user_id") != settings.user_id:
            return self.report.add(
                "credentials",
                FAIL,
                f"the token belongs to {me.get('user_id')}, not to {settings.user_id}",
                "set user_id to the bot's account, or use the bot's own token",
            )
        self.hs.token = token
        self.device_id = me.get("device_id") or settings.device_id
        return self.report.add("credentials", OK, f"{how} works: {me['user_id']}, device {self.device_id}")

    async def _password_once(self, expired: bool = False) -> Check:
        """No stored session: a test login with the password, whose device is deleted at once."""
        assert self.hs is not None
        settings = self.settings
        if settings.password is None:
            return self.report.add("credentials", FAIL, "no access_token and no password", "set one of them")
        try:
            body = await self.hs.request(
                "POST",
                "/_matrix/client/v3/login",
                {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": settings.user_id},
                    "password": settings.password.get_secret_value(),
                    "initial_device_display_name": "kleinstadtbot doctor (deleted at once)",
                },
            )
        except HomeserverError as exc:
            if exc.status in (401, 403):
                return self.report.add(
                    "credentials",
                    FAIL,
                    f"the homeserver refuses the password ({exc.errcode})",
                    "set the bot account's password (or an access_token) in the config",
                )
            raise
        self.hs.token = self.temporary_token = body["access_token"]
        note = "the stored session has expired; " if expired else ""
        return self.report.add(
            "credentials",
            OK,
            f"{note}the password works for {body.get('user_id')} (the bot logs in with it at its next "
            "start and keeps that device)",
        )

    async def _log_out_temporary(self) -> None:
        if self.hs is not None and self.temporary_token is not None:
            try:
                await self.hs.request("POST", "/_matrix/client/v3/logout", {}, token=self.temporary_token)
            except (HomeserverError, aiohttp.ClientError, TimeoutError):
                log.warning("could not log the doctor's test device out again")
            self.temporary_token = None

    # --- crypto store ---------------------------------------------------------------------------

    async def _crypto_store(self) -> Check:
        settings, hs = self.settings, self.hs
        if not settings.encryption:
            return self.report.add("crypto store", OK, "encryption is off (encryption: false)")
        if hs is None or self.temporary_token is not None or not self.device_id:
            return self.report.add(
                "crypto store", OK, "the bot has no device yet: it makes its keys at its first start"
            )
        store = settings.crypto_dir / f"{settings.user_id}_{self.device_id}.db"
        if not store.is_file():
            others = (
                sorted(p.name for p in settings.crypto_dir.glob("*.db"))
                if settings.crypto_dir.is_dir()
                else []
            )
            return self.report.add(
                "crypto store",
                FAIL,
                f"no crypto store for device {self.device_id} in {settings.crypto_dir}"
                + (f" (there is: {', '.join(others)})" if others else ""),
                "restore the crypto store of this device from a backup (kleinstadtbot db restore), or "
                "check data_dir; started without it, the bot makes new keys and cannot read older "
                "encrypted messages",
            )
        local_key = await asyncio.to_thread(_store_identity, store, settings.user_id or "", self.device_id)
        if local_key is None:
            return self.report.add(
                "crypto store",
                FAIL,
                f"{store.name} holds no keys for device {self.device_id}",
                "restore the crypto store from a backup taken with this device",
            )
        keys = await hs.request(
            "POST", "/_matrix/client/v3/keys/query", {"device_keys": {settings.user_id: [self.device_id]}}
        )
        device = ((keys.get("device_keys") or {}).get(settings.user_id) or {}).get(self.device_id) or {}
        published = (device.get("keys") or {}).get(f"ed25519:{self.device_id}")
        if published is None:
            return self.report.add(
                "crypto store",
                OK,
                f"{store.name} present; device {self.device_id} has not published keys yet (done at start)",
            )
        if published != local_key:
            return self.report.add(
                "crypto store",
                FAIL,
                f"{store.name} holds other keys than device {self.device_id} published (a store from another "
                "installation, or restored from the wrong backup)",
                "restore the crypto store that belongs to this device, or log the bot in as a new device "
                "(remove the stored session) and accept that older encrypted messages stay unreadable",
            )
        return self.report.add("crypto store", OK, f"{store.name} belongs to device {self.device_id}")

    # --- rooms -----------------------------------------------------------------------------------

    async def _coordination(self) -> Check:
        assert self.hs is not None
        settings, hs = self.settings, self.hs
        configured = list(settings.coordinators)
        missing = []
        for user in configured:
            try:
                await hs.request("GET", f"/_matrix/client/v3/profile/{quote(user, safe='')}")
            except HomeserverError as exc:
                if exc.errcode == "M_NOT_FOUND" or exc.status == 404:
                    missing.append(user)
                else:
                    raise
        if not settings.coordination_room:
            if not configured:
                return self.report.add(
                    "coordination",
                    FAIL,
                    "no coordinators: neither `coordinators` nor `coordination_room` is set",
                    "list the coordinators' Matrix IDs in `coordinators`, or set `coordination_room`",
                )
            if missing:
                return self._missing_coordinators(missing)
            return self.report.add(
                "coordination", OK, f"{len(configured)} coordinator(s) from the config; no coordination room"
            )
        try:
            room_id = await hs.resolve(settings.coordination_room)
        except HomeserverError as exc:
            return self.report.add(
                "coordination",
                FAIL,
                f"coordination room {settings.coordination_room} not found ({exc.errcode})",
                "create the room (or fix `coordination_room`) and invite the bot",
            )
        try:
            members = await hs.joined(room_id)
        except HomeserverError as exc:
            if exc.status == 403:
                return self.report.add(
                    "coordination",
                    FAIL,
                    f"the bot is not in the coordination room {settings.coordination_room}",
                    "invite the bot to the room; it accepts invitations from its own server "
                    "(`allowed_servers`)",
                )
            raise
        create = await hs.create_event(room_id)
        creators = privileged_creators(create or {})
        levels = await hs.state(room_id, "m.room.power_levels") or {}
        by_power = sorted(
            user
            for user in {*members, *(levels.get("users") or {}), *creators}
            if power_level(user, levels, creators) >= COORDINATOR_LEVEL and user != settings.user_id
        )
        if missing:
            return self._missing_coordinators(missing)
        if not by_power and not configured:
            return self.report.add(
                "coordination",
                FAIL,
                f"nobody but the bot holds power level {COORDINATOR_LEVEL} in the coordination room",
                f"give the coordinators power level {COORDINATOR_LEVEL} or more there (moderator)",
            )
        every = sorted({*configured, *by_power})
        return self.report.add(
            "coordination",
            OK,
            f"the bot is in {settings.coordination_room}; {len(every)} coordinator(s): "
            f"{len(configured)} from the config, {len(by_power)} by power level ≥ {COORDINATOR_LEVEL} "
            f"({', '.join(every[:5])}{', …' if len(every) > 5 else ''})",
        )

    def _missing_coordinators(self, missing: list[str]) -> Check:
        return self.report.add(
            "coordination",
            FAIL,
            f"coordinator(s) unknown to the homeserver: {', '.join(missing)}",
            "correct the Matrix IDs in `coordinators` (a typo grants nobody the role)",
        )

    async def _space(self) -> Check:
        assert self.hs is not None
        settings, hs = self.settings, self.hs
        configured = settings.space
        room = configured or recorded_space(settings)
        if room is None:
            return self.report.add("space", OK, "no Space yet: the bot creates one at its next start")
        try:
            room_id = await hs.resolve(room)
        except HomeserverError as exc:
            return self.report.add(
                "space",
                FAIL,
                f"the Space {room} is not found ({exc.errcode})",
                "fix `space`, or remove it to let the bot create one",
            )
        try:
            create = await hs.create_event(room_id)
        except HomeserverError as exc:
            if exc.status == 403:
                return self.report.add(
                    "space",
                    FAIL,
                    f"the bot is not in the Space {room}",
                    "invite the bot to the Space and give it power level 100 (or at least enough to add "
                    "rooms and invite)",
                )
            raise
        if ((create or {}).get("content") or {}).get("type") != "m.space":
            return self.report.add(
                "space", FAIL, f"{room} is a room, not a Space", "set `space` to the academy's Space"
            )
        mine, short = await power_shortfalls(hs, room_id, settings.user_id or "", SPACE_NEEDS)
        if short:
            return self.report.add(
                "space",
                FAIL,
                f"in the Space {room} the bot has power {shown_power(mine)} and may not: {'; '.join(short)}",
                "give the bot power level 100 in the Space (Element: Space settings → Roles & Permissions)",
            )
        return self.report.add(
            "space", OK, f"{room}: the bot may add rooms and invite (power {shown_power(mine)})"
        )

    async def _tandem_rooms(self) -> Check:
        assert self.hs is not None
        rooms = tandem_rooms(self.settings)
        if not rooms:
            return self.report.add("tandem rooms", OK, "no tandems yet")
        slots = asyncio.Semaphore(ROOM_CHECKS_AT_ONCE)
        user = self.settings.user_id or ""

        async def check(number: int, room_id: str) -> str | None:
            assert self.hs is not None
            async with slots:
                try:
                    mine, short = await power_shortfalls(self.hs, room_id, user, TANDEM_NEEDS)
                except HomeserverError as exc:
                    if exc.status == 403:
                        return f"tandem {number} ({room_id}): the bot is not in the room"
                    return f"tandem {number} ({room_id}): {exc}"
                if short:
                    return (
                        f"tandem {number} ({room_id}): power {shown_power(mine)}, may not {'; '.join(short)}"
                    )
                return None

        problems = [p for p in await asyncio.gather(*(check(n, r) for n, r in rooms)) if p]
        if problems:
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            return self.report.add(
                "tandem rooms",
                FAIL,
                f"{len(problems)} of {len(rooms)} tandem room(s): {' | '.join(problems[:5])}{more}",
                "give the bot power level 100 in these rooms (a room admin: Room settings → Roles & "
                "Permissions), or invite it back",
            )
        return self.report.add(
            "tandem rooms", OK, f"the bot's power is enough in all {len(rooms)} tandem room(s)"
        )

    async def _rate_limit(self) -> Check:
        assert self.hs is not None
        user = self.settings.user_id or ""
        path = f"/_synapse/admin/v1/users/{quote(user, safe='')}/override_ratelimit"
        exempt_how = (
            f"a server admin runs: curl -X POST -H 'Authorization: Bearer <admin token>' "
            f'-d \'{{"messages_per_second": 0, "burst_count": 0}}\' {self.settings.homeserver}{path}'
        )
        try:
            body = await self.hs.request("GET", path, token=self.admin_token)
        except HomeserverError as exc:
            if exc.status == 404 and exc.errcode == "M_UNRECOGNIZED":
                return self.report.add(
                    "rate limit",
                    UNKNOWN,
                    "cannot tell: the homeserver has no Synapse admin API here",
                    "ask the homeserver's admin to exempt the bot's account from the message rate limit",
                )
            if exc.status in (401, 403):
                return self.report.add(
                    "rate limit",
                    UNKNOWN,
                    "cannot tell without a server admin's token",
                    "run `kleinstadtbot doctor --admin-token-file FILE` with an admin's access token to "
                    f"check; to exempt the bot, {exempt_how}",
                )
            raise
        if body.get("messages_per_second") == 0 and body.get("burst_count") == 0:
            return self.report.add("rate limit", OK, f"{user} is exempt from the message rate limit")
        shown = (
            f"{body.get('messages_per_second')}/s, burst {body.get('burst_count')}" if body else "the default"
        )
        return self.report.add(
            "rate limit",
            FAIL,
            f"{user} is not exempt from the message rate limit ({shown}): broadcasts and check-ins to many "
            "rooms are slowed down by HTTP 429",
            f"to exempt it, {exempt_how}",
        )


def _store_identity(store: Path, user_id: str, device_id: str) -> str | None:
    """The ed25519 identity key of the account in nio's crypto store, read without writing."""
    try:
        conn = _read_only(store)
        try:
            row = conn.execute(
                "SELECT account, shared FROM accounts WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if not row:
        return None
    from nio import AsyncClientConfig
    from nio.crypto import OlmAccount

    try:  # the bot keeps nio's default pickle key (bot.runtime)
        account = OlmAccount.from_pickle(row[0], AsyncClientConfig().pickle_key, bool(row[1]))
    except Exception:  # a store written with another pickle key, or damaged
        return None
    return str(account.identity_keys["ed25519"])


async def run_doctor(config: str | None, admin_token: str | None = None) -> Report:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        report = Report()
        report.add("configuration", FAIL, "; ".join(exc.problems), "fix these settings (config/example.yaml)")
        return report
    return await Doctor(settings, admin_token).run()
