"""The bot's settings: one pydantic-settings model fed by a YAML file and the environment.

Sources, strongest first: keyword arguments (used by the CLI and tests), environment variables
``KLEINSTADTBOT_<KEY>`` (nested keys joined with ``__``, lists as JSON), then the YAML file given
with ``--config`` or ``KLEINSTADTBOT_CONFIG``.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "KLEINSTADTBOT_"
CONFIG_ENV = "KLEINSTADTBOT_CONFIG"
# the configuration file's values while ``load_settings`` builds the settings (below the
# environment's: ``Settings.settings_customise_sources``)
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("settings_file_values", default=None)
MXID_RE = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
SERVER_RE = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")


DEFAULT_AVATAR = Path(__file__).resolve().parent / "data" / "avatar.png"  # tools/draw_avatar.py
AVATAR_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
AVATAR_MAX_BYTES = 1024 * 1024


class ConfigError(Exception):
    """Invalid configuration. ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class SyncSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_ms: int = Field(30_000, ge=0, le=120_000, description="long-poll timeout")
    catch_up_minutes: float = Field(
        15, ge=0, le=24 * 60, description="answer commands sent while the bot was down if younger"
    )
    backoff_initial_seconds: float = Field(1.0, gt=0, le=60)
    backoff_max_seconds: float = Field(300.0, gt=0, le=3600)
    timeline_limit: int = Field(20, ge=1, le=100)
    sliding_first_sync: bool = Field(
        True,
        description="take a first start's first sync in pages through sliding sync (MSC4186) "
        "where the homeserver has it, else in one request",
    )


class RateLimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commands: int = Field(20, ge=1, le=1_000_000, description="commands per user and window")
    window_seconds: int = Field(60, ge=1, le=86_400)


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_rate_limited: int = Field(5, ge=0, le=50, description="HTTP 429 retries per request")
    max_timeouts: int = Field(5, ge=0, le=50)
    request_timeout_seconds: float = Field(60.0, gt=0, le=600)


class CheckinSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_rhythm: str = Field(
        "alle 2 Wochen dienstags 10 Uhr", description="the rhythm every new tandem starts with"
    )
    reminder_days: int = Field(3, ge=1, le=30, description="remind once after this many days")


class SchedulingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: float = Field(
        6, ge=0, le=24 * 7, description="deliver occurrences missed while down if this recent"
    )


class BroadcastSettings(BaseModel):
    """Coordinators' broadcasts (docs/broadcasts.md)."""

    model_config = ConfigDict(extra="forbid")

    draft_hours: float = Field(24, gt=0, le=24 * 14, description="an unconfirmed draft expires after this")
    concurrency: int = Field(4, ge=1, le=32, description="sends of one broadcast in flight at once")


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["plain", "json"] = Field(
        "plain", description="plain text lines, or one JSON object per line (journald, Loki)"
    )


class MetricsSettings(BaseModel):
    """The operator's HTTP listener: /metrics (Prometheus), /healthz and /readyz."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="off by default: nothing listens unless asked")
    address: str = Field("127.0.0.1", description="IP address to listen on (loopback by default)")
    port: int = Field(9477, ge=1, le=65535)
    sync_stale_seconds: float = Field(
        120, ge=10, le=3600, description="/readyz: the last successful sync is at most this old"
    )

    @field_validator("address")
    @classmethod
    def _address_is_an_ip(cls, value: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("expected an IP address such as 127.0.0.1 (or 0.0.0.0 in a container)") from None
        return value


class BackupSettings(BaseModel):
    """Scheduled online backups of the database and the crypto store (docs/operations.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    time: str = Field("03:00", description="daily, in the bot's time zone (HH:MM)")
    keep: int = Field(7, ge=1, le=1000, description="how many backups to keep; older ones are removed")
    directory: Path | None = Field(None, description="default: backups/ in the data folder")

    @field_validator("time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", value.strip())
        if match is None:
            raise ValueError("expected a time of day as HH:MM, such as 03:00")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @property
    def hour_minute(self) -> tuple[int, int]:
        hour, minute = self.time.split(":")
        return int(hour), int(minute)


class Settings(BaseSettings):
    """Every setting of kleinstadtbot, with defaults that suit the local demo."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    homeserver: str | None = None
    user_id: str | None = None
    password: SecretStr | None = None
    access_token: SecretStr | None = None
    device_id: str | None = None
    device_name: str = "kleinstadtbot"
    database: Path = Path("kleinstadtbot.db")
    data_dir: Path | None = None
    coordinators: list[str] = Field(default_factory=list)
    coordination_room: str | None = None
    locale: Literal["de", "en"] = "de"
    timezone: str = "Europe/Berlin"
    command_prefix: str = "!"
    allowed_servers: list[str] = Field(default_factory=list)
    leave_empty_rooms: bool = False
    encryption: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    sync: SyncSettings = Field(default_factory=SyncSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    checkins: CheckinSettings = Field(default_factory=CheckinSettings)
    scheduling: SchedulingSettings = Field(default_factory=SchedulingSettings)
    broadcasts: BroadcastSettings = Field(default_factory=BroadcastSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    space: str | None = None  # academy Space: alias or room ID; None: the bot creates one
    space_name: str = "Kleinstadtakademie"
    tandem_encrypted: bool = True
    content_dir: Path | None = None  # FAQ and modules; None: the shipped config/content
    # How the bot presents itself, set at start where the profile on the server differs;
    # None leaves that part of the profile as it is.
    display_name: str | None = "Kleinstadtakademie"
    avatar: Path | None = DEFAULT_AVATAR

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        values = _FILE_VALUES.get()
        if values:  # the configuration file's (``load_settings``), below the environment's
            sources.append(InitSettingsSource(settings_cls, init_kwargs=values))
        return tuple(sources)

    @field_validator("homeserver")
    @classmethod
    def _homeserver_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://matrix.example.org")
        return value.rstrip("/")

    @field_validator("user_id")
    @classmethod
    def _user_id_is_mxid(cls, value: str | None) -> str | None:
        if value is not None and not MXID_RE.match(value):
            raise ValueError("expected a Matrix user ID such as @kleinstadtbot:example.org")
        return value

    @field_validator("coordinators")
    @classmethod
    def _coordinators_are_mxids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not MXID_RE.match(v)]
        if bad:
            raise ValueError(
                f"expected Matrix user IDs such as @anna:example.org; {len(bad)} entries are not"
            )
        return value

    @field_validator("allowed_servers")
    @classmethod
    def _servers_are_names(cls, value: list[str]) -> list[str]:
        if any(not SERVER_RE.match(v) for v in value):
            raise ValueError("expected server names such as example.org")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Europe/Berlin") from None
        return value

    @field_validator("command_prefix")
    @classmethod
    def _prefix_is_short(cls, value: str) -> str:
        if not value or len(value) > 3 or any(c.isspace() for c in value):
            raise ValueError("expected 1 to 3 characters without spaces, such as !")
        return value

    @field_validator("display_name")
    @classmethod
    def _display_name_is_one_line(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or len(value) > 100 or "\n" in value):
            raise ValueError("expected one line of 1 to 100 characters, such as Kleinstadtakademie")
        return value

    @field_validator("avatar")
    @classmethod
    def _avatar_is_a_small_image(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if value.suffix.lower() not in AVATAR_TYPES:
            raise ValueError("expected a PNG, JPEG, GIF or WebP file (by its name's ending)")
        if not value.is_file():
            raise ValueError("file not found; give the path of an image, or null to keep the avatar")
        if value.stat().st_size > AVATAR_MAX_BYTES:
            raise ValueError("expected an image of at most 1 MB")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Settings:
        if self.password is not None and self.access_token is not None:
            raise ValueError("give either password or access_token, not both")
        return self

    # --- derived values -------------------------------------------------------------------

    @property
    def server_name(self) -> str | None:
        return self.user_id.split(":", 1)[1] if self.user_id else None

    @property
    def invite_servers(self) -> set[str]:
        """Servers whose users may invite the bot (default: the bot's own)."""
        if self.allowed_servers:
            return set(self.allowed_servers)
        return {self.server_name} if self.server_name else set()

    @property
    def store_dir(self) -> Path:
        """The bot's data folder: crypto store and other files live here."""
        return self.data_dir if self.data_dir is not None else self.database.parent.resolve()

    @property
    def crypto_dir(self) -> Path:
        """nio's crypto store: one SQLite file per device."""
        return self.store_dir / "crypto"

    @property
    def templates_dir(self) -> Path:
        """The message templates, compiled (Jinja2's bytecode cache): rebuilt from the templates
        whenever missing or out of date, so never backed up."""
        return self.store_dir / "cache" / "templates"

    @property
    def backup_dir(self) -> Path:
        return self.backup.directory if self.backup.directory is not None else self.store_dir / "backups"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def problems_for_run(self) -> list[str]:
        """What `run` needs beyond what the console needs."""
        problems = []
        if not self.homeserver:
            problems.append(
                "homeserver: missing; expected the homeserver URL, e.g. https://matrix.example.org"
            )
        if not self.user_id:
            problems.append("user_id: missing; expected the bot's Matrix ID, e.g. @kleinstadtbot:example.org")
        if self.password is None and self.access_token is None:
            problems.append("password or access_token: missing; give one of them to log in")
        return problems


def _format_errors(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        key = ".".join(str(p) for p in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting; see config/example.yaml for the known keys"
        lines.append(f"{key}: {message}")
    return lines


# Parser contexts that begin where something is opened that must be closed: a problem found
# later (often only at the end of the file) is a consequence, the place to fix is the opening.
_OPENED = ("quoted scalar", "flow sequence", "flow mapping")


def _yaml_error_place(error: Exception, text: str) -> str:
    """`` (line N…)`` for a YAML error, numbered from 1 as editors do, pointing at the line to
    fix. The parser's own text is left out: it may quote the value, and values stay unechoed."""
    problem = getattr(error, "problem_mark", None)
    if problem is None:
        return ""
    context = getattr(error, "context_mark", None)
    what = getattr(error, "context", None) or ""
    at_end = problem.index >= len(text.rstrip())
    if context is not None and (context.line < problem.line or at_end) and any(o in what for o in _OPENED):
        return f" (line {context.line + 1}: a quote or bracket opened there is not closed)"
    # the end of the file counts as the last line with content, not the empty line after it
    last = text.rstrip().count("\n")
    return f" (line {min(problem.line, last) + 1})"


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from ``path`` (or ``$KLEINSTADTBOT_CONFIG``) and the environment.

    Raises ConfigError with one line per problem; the lines never contain the values given,
    so secrets cannot leak into logs or terminals.
    """
    path = path or os.environ.get(CONFIG_ENV)
    loaded: dict[str, Any] | None = None
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError([f"config: file {file} not found"])
        try:
            import yaml

            text = file.read_text(encoding="utf-8")
            loaded = yaml.safe_load(text)
        except UnicodeDecodeError:
            raise ConfigError([f"config: {file} is not UTF-8 text"]) from None
        except Exception as exc:  # yaml.YAMLError
            raise ConfigError([f"config: {file} is not valid YAML{_yaml_error_place(exc, text)}"]) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([f"config: {file} must be a mapping of keys to values"])
    # the file's values, parsed once, as a source below the environment: no settings class
    # built for the file (a new pydantic model at every load)
    token = _FILE_VALUES.set(loaded)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    finally:
        _FILE_VALUES.reset(token)
