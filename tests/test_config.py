"""Settings: YAML, environment overrides, one readable line per problem, no secret in any output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Geheim-Passwort-7f3a9c"
TOKEN_SECRET = "syt_geheimes_token_91b2"


def write_config(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


def test_yaml_values_are_read(tmp_path):
    file = write_config(
        tmp_path / "c.yaml",
        {
            "homeserver": "https://matrix.example.org/",
            "user_id": "@kleinstadtbot:example.org",
            "password": SECRET,
            "coordinators": ["@anna:example.org"],
            "sync": {"timeout_ms": 5000},
            "locale": "en",
        },
    )
    settings = load_settings(file)
    assert settings.homeserver == "https://matrix.example.org"  # trailing slash removed
    assert settings.password is not None and settings.password.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert settings.coordinators == ["@anna:example.org"]
    assert settings.sync.timeout_ms == 5000
    assert settings.sync.backoff_initial_seconds == 1.0  # untouched nested default
    assert settings.locale == "en"
    assert settings.server_name == "example.org"


def test_environment_overrides_yaml_nested_and_lists(tmp_path, monkeypatch):
    file = write_config(
        tmp_path / "c.yaml",
        {"locale": "en", "sync": {"timeout_ms": 5000}, "coordinators": ["@anna:example.org"]},
    )
    monkeypatch.setenv("KLEINSTADTBOT_LOCALE", "de")
    monkeypatch.setenv("KLEINSTADTBOT_SYNC__TIMEOUT_MS", "7000")
    monkeypatch.setenv("KLEINSTADTBOT_RATE_LIMIT__COMMANDS", "3")
    monkeypatch.setenv("KLEINSTADTBOT_COORDINATORS", '["@bert:example.org", "@cem:example.org"]')
    settings = load_settings(file)
    assert settings.locale == "de"
    assert settings.sync.timeout_ms == 7000
    assert settings.rate_limit.commands == 3
    assert settings.coordinators == ["@bert:example.org", "@cem:example.org"]


def test_config_file_from_environment_variable(tmp_path, monkeypatch):
    file = write_config(tmp_path / "c.yaml", {"command_prefix": "?"})
    monkeypatch.setenv("KLEINSTADTBOT_CONFIG", str(file))
    assert load_settings().command_prefix == "?"


def test_every_problem_one_line_naming_key_and_expectation(tmp_path):
    file = write_config(
        tmp_path / "c.yaml",
        {
            "homeserver": "matrix.example.org",
            "user_id": "kleinstadtbot",
            "timezone": "Mond/Krater",
            "command_prefix": "!!!!",
            "sync": {"timeout_ms": -5},
            "coordinators": ["anna"],
            "password": SECRET,
        },
    )
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    problems = info.value.problems
    by_key = {line.split(":", 1)[0]: line for line in problems}
    assert set(by_key) == {
        "homeserver",
        "user_id",
        "timezone",
        "command_prefix",
        "sync.timeout_ms",
        "coordinators",
    }
    assert "https://matrix.example.org" in by_key["homeserver"]
    assert "@kleinstadtbot:example.org" in by_key["user_id"]
    assert "Europe/Berlin" in by_key["timezone"]
    assert "greater than or equal to 0" in by_key["sync.timeout_ms"]
    assert all("\n" not in line for line in problems)
    for line in problems:
        assert SECRET not in line
        assert "Mond/Krater" not in line  # rejected values are not echoed either


def test_unknown_key_is_an_error(tmp_path):
    file = write_config(tmp_path / "c.yaml", {"homeservr": "https://x.org", "locale": "de"})
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    assert info.value.problems == ["homeservr: unknown setting; see config/example.yaml for the known keys"]


def test_password_and_access_token_together_is_an_error(tmp_path):
    file = write_config(tmp_path / "c.yaml", {"password": SECRET, "access_token": TOKEN_SECRET})
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    assert len(info.value.problems) == 1
    assert "either password or access_token" in info.value.problems[0]
    assert SECRET not in str(info.value) and TOKEN_SECRET not in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("homeserver: [unclosed\npassword: x\n")
    with pytest.raises(ConfigError) as info:
        load_settings(bad)
    assert "not valid YAML" in info.value.problems[0] and "line" in info.value.problems[0]
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.yaml")
    assert "not found" in info.value.problems[0]
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError) as info:
        load_settings(scalar)
    assert "mapping" in info.value.problems[0]


def test_missing_run_credentials_are_listed(tmp_path):
    problems = load_settings(write_config(tmp_path / "c.yaml", {})).problems_for_run()
    assert [p.split(":")[0] for p in problems] == ["homeserver", "user_id", "password or access_token"]


# --- `kleinstadtbot config check` ------------------------------------------------------------


def run_cli(
    *args: str, env: dict | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def test_config_check_ok_without_connecting(tmp_path):
    # port 9 on 127.0.0.1 (discard) is closed: a connecting check would fail or hang
    file = write_config(
        tmp_path / "c.yaml",
        {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@kleinstadtbot:example.org",
            "access_token": TOKEN_SECRET,
            "database": str(tmp_path / "bot.db"),
            "coordinators": ["@anna:example.org"],
        },
    )
    result = run_cli("config", "check", "--config", str(file), timeout=30)
    assert result.returncode == 0, result.stderr
    assert "config OK: @kleinstadtbot:example.org on http://127.0.0.1:9" in result.stdout
    assert "1 coordinator" in result.stdout
    assert TOKEN_SECRET not in result.stdout + result.stderr
    assert not (tmp_path / "bot.db").exists()  # checking does not create the database


def test_config_check_reports_problems_without_the_secret(tmp_path):
    file = write_config(
        tmp_path / "c.yaml",
        {
            "homeserver": "ftp://matrix.example.org",
            "user_id": "@kleinstadtbot:example.org",
            "password": SECRET,
            "log_level": "LAUT",
        },
    )
    result = run_cli("config", "check", "--config", str(file))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert all(line.startswith("config error: ") for line in lines)
    assert any(line.startswith("config error: homeserver:") for line in lines)
    assert any(line.startswith("config error: log_level:") for line in lines)
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {"KLEINSTADTBOT_SYNC__TIMEOUT_MS": "viel"},
        {"KLEINSTADTBOT_ACCESS_TOKEN": TOKEN_SECRET},
    ],
)
def test_config_check_secret_from_environment_never_shown(tmp_path, extra):
    result = run_cli("config", "check", env={"KLEINSTADTBOT_PASSWORD": SECRET, **extra})
    assert result.returncode == 2
    expected = "sync.timeout_ms" if "KLEINSTADTBOT_SYNC__TIMEOUT_MS" in extra else "either password"
    assert expected in result.stderr
    assert SECRET not in result.stderr and TOKEN_SECRET not in result.stderr


def test_config_check_missing_credentials_exit_2(tmp_path):
    file = write_config(tmp_path / "c.yaml", {"homeserver": "https://matrix.example.org"})
    result = run_cli("config", "check", "--config", str(file))
    assert result.returncode == 2
    assert "config error: user_id: missing" in result.stderr
    assert "config error: password or access_token: missing" in result.stderr


def test_unknown_nested_key_is_an_error(tmp_path):
    """A typo inside a section (``sync: {timout_ms: …}``) must not be silently ignored."""
    file = write_config(
        tmp_path / "c.yaml", {"sync": {"timout_ms": 3}, "rate_limit": {"comands": 5}, "retry": {"max_429": 1}}
    )
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    assert sorted(info.value.problems) == [
        f"{key}: unknown setting; see config/example.yaml for the known keys"
        for key in ("rate_limit.comands", "retry.max_429", "sync.timout_ms")
    ]


@pytest.mark.parametrize(
    "text, line",
    [
        ('homeserver: "https://matrix.example.org\n', "line 1: a quote or bracket opened there"),
        ('coordinators: ["@anna:example.org"\nlocale: de\n', "line 1: a quote or bracket opened there"),
        ('locale: de\nhomeserver: "x\n\n\n', "line 2: a quote or bracket opened there"),
        ("locale: de: en\n", "(line 1)"),
        ("locale: de\n  sync: 3\n", "(line 2)"),
        ("locale: de\n\n\n- timezone\n", "(line 4)"),
    ],
)
def test_yaml_error_names_the_line_to_fix_counting_from_one(tmp_path, text, line):
    file = tmp_path / "c.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    [problem] = info.value.problems
    assert problem.startswith(f"config: {file} is not valid YAML (") and line in problem
    assert "matrix.example.org" not in problem and "anna" not in problem  # values are not echoed


def test_config_that_is_not_utf8_is_named_as_such(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_bytes("locale: de\nspace_name: Kleinstädte\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_settings(file)
    assert info.value.problems == [f"config: {file} is not UTF-8 text"]


def test_the_bot_presents_itself_as_the_academy_by_default():
    from config.settings import DEFAULT_AVATAR, Settings

    settings = Settings()
    assert settings.display_name == "Kleinstadtakademie"
    assert settings.avatar == DEFAULT_AVATAR and DEFAULT_AVATAR.read_bytes().startswith(b"\x89PNG")


def test_display_name_and_avatar_problems_are_one_line_each(tmp_path):
    big = tmp_path / "gross.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (1024 * 1024 + 1))
    for avatar, expected in [
        (tmp_path / "fehlt.png", "file not found"),
        (tmp_path / "wappen.svg", "PNG, JPEG, GIF or WebP"),
        (big, "at most 1 MB"),
    ]:
        file = write_config(tmp_path / "c.yaml", {"avatar": str(avatar), "display_name": " "})
        with pytest.raises(ConfigError) as info:
            load_settings(file)
        by_key = {line.split(":", 1)[0]: line for line in info.value.problems}
        assert set(by_key) == {"avatar", "display_name"}
        assert expected in by_key["avatar"] and "1 to 100 characters" in by_key["display_name"]
    # null leaves the profile as it is
    settings = load_settings(write_config(tmp_path / "c.yaml", {"avatar": None, "display_name": None}))
    assert settings.avatar is None and settings.display_name is None
