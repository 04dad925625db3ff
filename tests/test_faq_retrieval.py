"""Retrieval quality: questions as towns ask them must find the right FAQ entry."""

import pytest

from commands.faq_search import FAQ_WEIGHTS, Index, faq_docs, load_library, stem, words
from config.content import FaqEntry
from tests.faq_questions import OFF_TOPIC, RETRIEVAL_SET


@pytest.fixture(scope="module")
def library():
    lib = load_library()
    assert not lib.problems, [str(p) for p in lib.problems]
    return lib


def test_retrieval_set_is_big_and_points_to_real_entries(library):
    ids = {e.id for e in library.faq("de")}
    assert len(RETRIEVAL_SET) >= 40
    assert {expected for _q, expected in RETRIEVAL_SET} <= ids
    own = {e.question.lower() for e in library.faq("de")} | {
        a.lower() for e in library.faq("de") for a in e.alternatives
    }
    assert not [q for q, _id in RETRIEVAL_SET if q.lower() in own], "test questions must not copy the FAQ"


def test_top1_accuracy_at_least_90_percent(library):
    misses = []
    confident = 0
    for question, expected in RETRIEVAL_SET:
        found = library.ask("de", question)
        if not found or found[0][0].id != expected:
            misses.append((question, expected, found[0][0].id if found else None))
        elif found[0][1].confident:
            confident += 1
    accuracy = 1 - len(misses) / len(RETRIEVAL_SET)
    print(
        f"\nFAQ retrieval: top-1 accuracy {accuracy:.0%} ({len(RETRIEVAL_SET) - len(misses)}/"
        f"{len(RETRIEVAL_SET)}), confident and right {confident}/{len(RETRIEVAL_SET)}"
    )
    for miss in misses:
        print("  miss:", miss)
    assert accuracy >= 0.9


def test_no_confident_answer_for_off_topic_questions(library):
    confident = [
        (q, found[0][0].id) for q in OFF_TOPIC if (found := library.ask("de", q)) and found[0][1].confident
    ]
    assert confident == []


def test_confident_answers_are_almost_always_right(library):
    answered = [
        (q, exp, found[0][0].id)
        for q, exp in RETRIEVAL_SET
        if (found := library.ask("de", q)) and found[0][1].confident
    ]
    wrong = [a for a in answered if a[1] != a[2]]
    print(f"\nconfident answers: {len(answered)}, of them wrong: {wrong}")
    assert len(answered) >= 0.75 * len(RETRIEVAL_SET)
    assert len(wrong) <= 0.05 * len(answered)


def test_umlauts_case_and_ae_spelling_are_the_same():
    assert words("Grundsätze DÜRFEN") == words("grundsaetze duerfen")
    assert stem("kleinstaedten") == stem("kleinstädte".replace("ä", "ae"))


def _index(*entries: FaqEntry) -> Index:
    return Index.build(faq_docs(list(entries)), FAQ_WEIGHTS)


def test_compound_words_split_into_known_words():
    index = _index(
        FaqEntry("tandem", "Was ist ein Tandem?", "Zwei Bürgermeister tauschen sich aus.", tags=("partner",)),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    [hit, *_] = index.search("Tandempartner")
    assert hit.id == "tandem" and hit.confident


def test_typo_in_a_long_word_still_finds_the_entry():
    index = _index(
        FaqEntry("werkstatt", "Was ist die Lernwerkstatt?", "Ein Format."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    assert index.search("Lernwerkstat")[0].id == "werkstatt"
    assert index.search("Kongres")[0].id == "kongress"


def test_word_only_in_the_answer_is_not_enough_for_confidence():
    index = _index(
        FaqEntry("a", "Was ist ein Tandem?", "Das erklären wir später genauer."),
        FaqEntry("b", "Wann ist der Kongress?", "Im Juni."),
    )
    [hit] = index.search("später")
    assert hit.id == "a" and not hit.confident


def test_ranking_is_deterministic(library):
    first = [library.ask("de", q) for q, _ in RETRIEVAL_SET[:10]]
    again = [load_library().ask("de", q) for q, _ in RETRIEVAL_SET[:10]]

    def ranked(results):
        return [[(e.id, h.score) for e, h in r] for r in results]

    assert ranked(first) == ranked(again)
