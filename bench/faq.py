"""Benchmark of FAQ answers and module search: quality on both halves of the evaluation set,
median and p99 per question, index build time and the library's memory.

Runs in-process over the shipped content: loading and checking the files, building the
indexes (German and English), then every question of the evaluation set (``tests/faq_eval``,
both splits) repeated, and module searches. Prints the figures; no assertions.
Usage: ``.venv/bin/python bench/faq.py`` (``-v`` also lists the misses of the tuning
material, ``--heldout`` adds the held-out half's totals).

The tuning material is the tuning halves (``tuning``, ``tuning3`` to ``tuning12``), the first
set's retired held-out half (``heldout``, printed as "retired"), the dev set and, in English,
the English half of ``heldout3`` (retired in round 4) and ``heldout4`` to ``heldout11``
(retired in rounds 5 to 12). The held-out half of each locale (German: ``heldout3``; English:
``heldout12``) is never used to tune the content or the search (see
bench/README.md): its totals are printed only with ``--heldout`` (to report the final figures),
never its questions or misses, so a run while tuning shows the tuning material only.

Since round 7 the English search learns from examples (``faq/examples.en.yaml``), which are
the English tuning material: its English figures here are on questions the model has
learned. ``bench/faq_learned.py`` scores each fresh set with it left out of the examples.
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
from tests.faq_eval import DEV, HALVES, HELDOUT, LOCALES, RETIRED, RETIRED_IN, evaluate, load, tuning_parts

ROUNDS = 20


def figures(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<28} n={len(ordered):>5}  median {statistics.median(ordered) * 1e3:7.3f} ms"
        f"  p99 {p99 * 1e3:7.3f} ms  max {ordered[-1] * 1e3:7.3f} ms"
    )


def main() -> None:
    verbose = "-v" in sys.argv
    # the tuning material of each locale, then (only with --heldout) its held-out half
    parts = [
        (name, locale)
        for locale in LOCALES
        for name in (*tuning_parts(locale), *([HELDOUT[locale]] if "--heldout" in sys.argv else []))
    ]
    start = time.perf_counter()
    content, problems = load_content()
    load_s = time.perf_counter() - start
    print(
        "content: "
        + ", ".join(f"{len(content.faq.get(loc, []))} FAQ entries ({loc})" for loc in LOCALES)
        + f", {len(content.modules_for('de'))} modules, {len(problems)} problems"
    )
    print(f"load + check files             {load_s * 1e3:7.1f} ms (first run, includes YAML parsing)")
    for locale in LOCALES:
        builds, warm = [], []
        for _ in range(10):
            stem.cache_clear()
            start = time.thread_time()
            Library.build(content, problems, (locale,))
            builds.append(time.thread_time() - start)
        for _ in range(10):
            start = time.thread_time()
            Library.build(content, problems, (locale,))
            warm.append(time.thread_time() - start)
        figures(f"index build {locale} (cold, CPU)", builds)
        figures(f"index build {locale} (warm, CPU)", warm)
    gc.collect()
    tracemalloc.start()
    library = load_library(locales=("de",))
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"library in memory (de)         {memory / 1024:7.0f} KiB (content + indexes, tracemalloc)")
    library.prepare("en")

    sets = {name: load(name) for name in (*HALVES, DEV)}
    for locale in LOCALES:
        questions = [q.text for half in HALVES for q in sets[half][locale]]
        times, cpu = [], []
        for _ in range(ROUNDS):
            for question in questions:
                start, start_cpu = time.perf_counter(), time.thread_time()
                library.ask(locale, question)
                cpu.append(time.thread_time() - start_cpu)
                times.append(time.perf_counter() - start)
        figures(f"FAQ answer {locale} (ask)", times)
        # CPU time of the same calls: unaffected by other processes on a shared machine
        figures(f"FAQ answer {locale} (CPU)", cpu)
    print()
    print("quality (top-1: answered directly with the right entry; offered: right entry answered")
    print("or among the choices; wrong confident: a direct answer with another entry, or to a")
    print("question no entry answers)")
    for name, locale in parts:
        if not sets[name][locale]:
            continue  # a set of one language (tuning4: English only)
        held_out = name == HELDOUT[locale]
        result = evaluate(library, locale, sets[name][locale])
        if held_out:
            label = f"{name} (HELD-OUT)"
        elif name == RETIRED or locale in RETIRED_IN.get(name, ()):
            label = f"{name} (retired)"
        else:
            label = name
        print(f"  {label:<20} {locale}  {result.line()}")
        if verbose and not held_out:
            for item in result.wrong_confident + result.missed + result.not_direct:
                print("      ", item)

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
    print()
    figures("module search", search_times)


if __name__ == "__main__":
    main()
