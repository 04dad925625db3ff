"""Tables and ratios of ``bench/peers.sh`` results: one table per series and room count.

    .venv/bin/python bench/peers_summary.py RESULTS.jsonl [--last | --one]

A series starts at a ``# series`` line (``bench/peers.sh`` writes one); only ratios inside one
series compare, because absolute figures move with the load of a shared machine. Each figure
is the mean over the series' runs of a bot (min–max beside it); ``RTT median`` pools every
round trip of the runs. ``--last``: only the last series; ``--one``: the whole file as one
series (a series run in several invocations).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

LABELS = (
    "A-nio-floor",
    "B-nio-floor-e2e",
    "C-maubot",
    "D-kleinstadtbot",
    "E-kleinstadtbot-profile-set",
    "E0-kleinstadtbot-uncached",
    "F-nio-floor-e2e-stack",
    "G-nio-floor-e2e-stack-least",
    "H-nio-floor-e2e-stack-guide",
)
OURS = (
    "D-kleinstadtbot",
    "D0-kleinstadtbot",
    "E-kleinstadtbot-profile-set",
    "E0-kleinstadtbot-uncached",
    "EB-kleinstadtbot-profile-set",
)


def series(path: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    found: list[tuple[str, list[dict[str, Any]]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# series"):
            found.append((line[2:], []))
        elif line.startswith("# end") and found:
            found[-1] = (f"{found[-1][0]}; {line[2:]}", found[-1][1])
        elif line.startswith("{"):
            if not found:
                found.append(("series (no header)", []))
            found[-1][1].append(json.loads(line))
    return found


def figures(run: dict[str, Any]) -> dict[str, float | None]:
    """One run's figures; with several warm restarts (``RESTARTS`` in bench/peers.sh) their
    median."""
    restarts = run.get("restarts") or []

    def restart_median(key: str) -> float | None:
        values = [r[key] for r in restarts if r.get(key) is not None]
        return statistics.median(values) if values else None

    rss_restart = [r["mem_ready"]["rss_mb"] for r in restarts if r.get("mem_ready")]
    return {
        "start": run["startup_s"],
        "restart": restart_median("startup_s"),
        "restart_cpu": restart_median("cpu_ready_s"),
        "rtt": run["rtt_ms"]["median"],
        "rss": run["mem_ready"]["rss_mb"],
        "rss_end": run["mem_end"]["rss_mb"],
        "rss_restart": statistics.median(rss_restart) if rss_restart else None,
        "cpu": run["cpu_ready_s"],
    }


def mean_range(values: list[float], digits: int) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def table(runs: list[dict[str, Any]]) -> list[str]:
    by_label: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_label.setdefault(run["label"], []).append(run)
    lines = [
        "| bot | runs | start → first reply s | warm restart s | bot CPU s to first reply after "
        "restart | RTT median ms | RSS ready MB | RSS after restart MB | RSS end MB "
        "| bot CPU s to first reply | replies / probes at start |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    means: dict[str, dict[str, float]] = {}
    for label in [*LABELS, *sorted(set(by_label) - set(LABELS))]:  # D0-kleinstadtbot-COMMIT last
        group = by_label.get(label)
        if not group:
            continue
        values = [figures(run) for run in group]

        def column(key: str, values: list[dict[str, float | None]] = values) -> list[float]:
            return [float(v) for v in (row[key] for row in values) if v is not None]

        pooled = [ms for run in group for ms in run["rtt_ms"]["all"] if ms is not None]
        restarts = [r["startup_s"] for run in group for r in run.get("restarts") or [] if r.get("startup_s")]
        means[label] = {key: statistics.fmean(column(key)) for key in values[0] if column(key)}
        means[label]["rtt_pooled"] = statistics.median(pooled)
        if restarts:  # every warm restart of every run: the figure a series' ratio is read from
            means[label]["restart_pooled"] = statistics.median(restarts)
        restart = mean_range(column("restart"), 2)
        if len(restarts) > 1:
            restart = f"{means[label]['restart_pooled']:.3f} pooled; runs {restart}"
        replies = ", ".join(
            f"{run.get('startup_replies', '?')}/{run.get('probes_sent', '?')}" for run in group
        )
        lines.append(
            f"| {label} | {len(group)} | {mean_range(column('start'), 2)} "
            f"| {restart} | {mean_range(column('restart_cpu'), 2)} "
            f"| {means[label]['rtt_pooled']:.0f} ({mean_range(column('rtt'), 0)}) "
            f"| {mean_range(column('rss'), 1)} | {mean_range(column('rss_restart'), 1)} "
            f"| {mean_range(column('rss_end'), 1)} | {mean_range(column('cpu'), 2)} | {replies} |"
        )
    ours_labels = [label for label in means if label.startswith(OURS)]  # D0-… (--base) too
    for mine in ours_labels:
        ours = means.get(mine)
        if not ours:
            continue
        lines.append("")
        for label, theirs in means.items():
            if label in ours_labels:
                continue
            parts = []
            for key, name in (
                ("start", "start"),
                ("restart", "restart"),
                ("restart_pooled", "restart pooled"),
                ("restart_cpu", "restart CPU"),
                ("rtt_pooled", "RTT median"),
            ):
                if key in ours and theirs.get(key):
                    parts.append(f"{name} {ours[key] / theirs[key]:.2f}×")
            if "rss" in ours and "rss" in theirs:
                parts.append(f"RSS {ours['rss'] - theirs['rss']:+.1f} MB")
            lines.append(f"- {mine} against {label}: {', '.join(parts)}")
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    found = series(Path(argv[0]))
    if "--last" in argv[1:]:
        found = found[-1:]
    if "--one" in argv[1:]:  # a series run in several invocations (e.g. one per room count)
        found = [("; ".join(title for title, _ in found), [run for _, runs in found for run in runs])]
    for title, runs in found:
        print(f"## {title}\n")
        failed = [run for run in runs if not run.get("ok")]
        for run in failed:
            print(f"FAILED: {run['label']} rooms={run['rooms']}: {run.get('error')}")
        ok = [run for run in runs if run.get("ok")]
        for rooms in sorted({run["rooms"] for run in ok}):
            print(f"### {rooms} rooms\n")
            print("\n".join(table([run for run in ok if run["rooms"] == rooms])))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
