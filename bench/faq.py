"""Benchmark of FAQ answers and module search: median and p99 per question, index build time.

Runs in-process over the shipped content: loading and checking the files, building the
indexes, then every question of the retrieval test set (plus the off-topic ones) repeated, and
module searches. Prints the figures; no assertions. Usage: ``.venv/bin/python bench/faq.py``
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.faq_search import Library, load_library, stem
from config.content import load_content
from tests.faq_questions import OFF_TOPIC, RETRIEVAL_SET

ROUNDS = 20


def figures(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<28} n={len(ordered):>5}  median {statistics.median(ordered) * 1e3:7.3f} ms"
        f"  p99 {p99 * 1e3:7.3f} ms  max {ordered[-1] * 1e3:7.3f} ms"
    )


def main() -> None:
    start = time.perf_counter()
    content, problems = load_content()
    load_s = time.perf_counter() - start
    builds = []
    for _ in range(10):
        stem.cache_clear()
        start = time.perf_counter()
        Library.build(content, problems)
        builds.append(time.perf_counter() - start)
    warm = []
    for _ in range(10):
        start = time.perf_counter()
        Library.build(content, problems)
        warm.append(time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    library = load_library()
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(
        f"content: {len(content.faq_for('de'))} FAQ entries, {len(content.modules_for('de'))} modules, "
        f"{len(problems)} problems"
    )
    print(f"load + check files             {load_s * 1e3:7.1f} ms (first run, includes YAML parsing)")
    figures("index build (cold stems)", builds)
    figures("index build (warm stems)", warm)
    print(f"library in memory              {memory / 1024:7.0f} KiB (content + indexes, tracemalloc)")

    questions = [q for q, _ in RETRIEVAL_SET] + OFF_TOPIC
    answer_times, correct = [], 0
    for _ in range(ROUNDS):
        for question in questions:
            start = time.perf_counter()
            found = library.ask("de", question)
            answer_times.append(time.perf_counter() - start)
    for question, expected in RETRIEVAL_SET:
        found = library.ask("de", question)
        correct += bool(found and found[0][0].id == expected)
    figures("FAQ answer (ask)", answer_times)
    share = correct / len(RETRIEVAL_SET)
    print(f"top-1 accuracy                 {correct}/{len(RETRIEVAL_SET)} = {share:.0%}")

    searches = [
        "Jugend",
        "Beteiligung Bürgerrat",
        "lernwerkstatt",
        "Coworking Pendeln",
        "Leerstand",
        "kolegiales coaching",
        "Webinar digital",
        "Datenbank Wohnen",
    ]
    search_times = []
    for _ in range(ROUNDS * 5):
        for words in searches:
            start = time.perf_counter()
            library.find_modules("de", words)
            search_times.append(time.perf_counter() - start)
    figures("module search", search_times)


if __name__ == "__main__":
    main()
