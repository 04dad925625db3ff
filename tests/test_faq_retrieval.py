"""Retrieval quality: questions written against the topics must find the right FAQ entry.

The evaluation set (``tests/faq_eval``) has eleven splits into a tuning half and a held-out
half: the first set (rounds 1 and 2), whose held-out half is retired to tuning material; the
fresh set of round 3, whose held-out half (``heldout3.yaml``) is the German one reported (its
English half retired in round 4); the English sets of rounds 4 to 11 (each held-out half
retired in the round after); and the English set of round 12, whose held-out half
(``heldout12.yaml``) is the English one reported. The
tuning material (``tuning_parts``) carries regression floors here; the held-out halves' totals
are printed (``-s``) and reported by ``bench/faq.py --heldout``, never used to tune the
content or the search, and no failure here names one of their questions.
"""

import re

import pytest

from commands.faq_search import (
    FAQ_WEIGHTS,
    ROLE,
    WORD_RE,
    Hit,
    Index,
    Language,
    faq_docs,
    load_library,
    stem,
    words,
)
from config.content import FaqEntry
from config.topics import fold
from tests.faq_eval import (
    DEV,
    HELDOUT,
    LOCALES,
    RETIRED,
    SET_LOCALES,
    SETS,
    Question,
    echo_of,
    evaluate,
    load,
    normalised,
    split,
    tuning_parts,
)

# Floors for the tuning material: a regression guard below today's figures (bench/README.md)
# the English sets of rounds 4 and 5 (English only: 88 %, 87 % and 85 % top-1 after round 5);
# heldout5 (74 % when it was reported in round 5, 84 % after the round-6 vocabulary, 88 % after
# its second pass) and tuning6 (64 % with round-5 code, 82 % after the round-6 vocabulary, 83 %
# after its second pass); heldout6 (71 % when it was reported in round 6) and tuning7 (67 % with
# round-6 code; both 88 % and 91 % since they are examples the search learns from, and 86 % and
# 81 % when each is left out of the examples: bench/faq_learned.py); tuning8 (79 % with the
# round-7 examples, two wrong direct answers by the rules: "pilot phase dates", a federal
# programme's funding rate)
MIN_TOP1 = {
    None: 0.78,
    "tuning4": 0.8,
    "heldout4": 0.8,
    "tuning5": 0.8,
    "heldout5": 0.84,
    "tuning6": 0.8,
    "heldout6": 0.84,
    "tuning7": 0.86,
    "tuning8": 0.75,
}
MIN_OFFERED = {None: 0.95}
MAX_WRONG_CONFIDENT = {None: 1, "tuning8": 2}


@pytest.fixture(scope="module")
def library():
    lib = load_library(locales=LOCALES)
    assert not [p for p in lib.problems if "/faq/" in p.file], [str(p) for p in lib.problems]
    return lib


def _shown(question: Question, heldout: set[Question]) -> str:
    """A question as a failure may name it: never one of the held-out half."""
    return "(held-out question)" if question in heldout else question.text


@pytest.mark.parametrize("name", SETS)
def test_evaluation_set_is_big_split_by_the_rule_and_points_to_real_entries(library, name):
    tuning_name, heldout_name = SETS[name]
    for locale in LOCALES:
        if locale not in SET_LOCALES[name]:  # the English set has no German questions
            assert load(tuning_name)[locale] == load(heldout_name)[locale] == []
            continue
        tuning_half, heldout_half = load(tuning_name)[locale], load(heldout_name)[locale]
        everything = tuning_half + heldout_half
        assert len(everything) >= 100, locale
        assert sum(q.expected is None for q in everything) >= 10, "questions no entry answers"
        tuning, heldout = split(everything)
        assert (set(tuning), set(heldout)) == (set(tuning_half), set(heldout_half))
        assert not {q.text for q in tuning} & {q.text for q in heldout}
        ids = {e.id for e in library.faq(locale)}
        assert {q.expected for q in everything if q.expected} <= ids, locale


def test_each_locale_has_one_held_out_half_that_is_no_tuning_material():
    assert HELDOUT == {"de": "heldout3", "en": "heldout12"}
    for locale in LOCALES:
        assert HELDOUT[locale] not in tuning_parts(locale)
        assert load(HELDOUT[locale])[locale], locale
    # heldout3's English half was reported in round 3 and is tuning material since; its German
    # half is still held out
    assert "heldout3" in tuning_parts("en") and "heldout3" not in tuning_parts("de")
    # heldout4 to heldout11 (English only) were reported in rounds 4 to 11: tuning material since
    assert {f"heldout{n}" for n in range(4, 12)} <= set(tuning_parts("en"))
    assert "heldout12" not in tuning_parts("en")


@pytest.mark.parametrize("locale", LOCALES)
def test_no_phrasing_echoes_an_evaluation_question(library, locale):
    """The entries' alternative phrasings must not copy or echo any question of the evaluation
    set (both splits, the retired half and the dev set): the figures measure understanding of
    new questions. A failure names the phrasing to delete, and the question unless it is held
    out: the held-out questions stay unread by whoever writes the phrasings.

    An entry's own question (its title) is checked against the first set only: the fresh set
    was written later, without the entries at hand, and asks some of the titles in the same
    words ("Was ist ein Tandem?"); the titles predate it (bench/README.md counts them). The
    same holds for the English set of round 4."""
    heldout = set(load(HELDOUT[locale])[locale])
    everything = [q for name in (*tuning_parts(locale), HELDOUT[locale]) for q in load(name)[locale]]
    # the English files of rounds 4 to 11 too
    english = {f"{half}{n}" for half in ("tuning", "heldout") for n in range(4, 12)}
    assert english <= {*tuning_parts("en"), HELDOUT["en"]}
    first = {q for name in (*SETS["first"], DEV) for q in load(name)[locale]}
    ids = {e.id for e in library.faq(locale)}
    assert {q.expected for q in load(DEV)[locale] if q.expected} <= ids, locale
    titles = {normalised(e.question) for e in library.faq(locale)}
    phrasings = [normalised(a) for e in library.faq(locale) for a in e.alternatives]
    echoed = echo_of(phrasings)
    copied = [
        _shown(q, heldout)
        for q in everything
        if normalised(q.text) in set(phrasings) or (q in first and normalised(q.text) in titles)
    ]
    assert copied == [], "evaluation questions must not be the entries' own wording"
    close = [(_shown(q, heldout), found) for q in everything if (found := echoed(q.text))]
    assert close == [], "an alternative phrasing must not echo an evaluation question"


@pytest.mark.parametrize(
    ("name", "locale"),
    [
        (name, locale)
        for locale in LOCALES
        for name in tuning_parts(locale)
        if name != DEV and (name == RETIRED or any(name in SETS[s] for s in SETS if locale in SET_LOCALES[s]))
    ],
)
def test_tuning_half_quality(library, locale, name):
    """The tuning halves and the retired held-out halves: a regression guard."""
    assert name != HELDOUT[locale]
    figures = evaluate(library, locale, load(name)[locale])
    print(f"\nFAQ {locale} {name}: {figures.line()}")
    for wrong in figures.wrong_confident:
        print("  wrong confident:", wrong)
    for missed in figures.missed:
        print("  not offered:", missed)
    assert figures.top1_share >= MIN_TOP1.get(name, MIN_TOP1[None])
    assert figures.offered_share >= MIN_OFFERED.get(name, MIN_OFFERED[None])
    assert len(figures.wrong_confident) <= MAX_WRONG_CONFIDENT.get(name, MAX_WRONG_CONFIDENT[None])


@pytest.mark.parametrize("locale", LOCALES)
def test_off_topic_probes_rarely_get_a_confident_answer(library, locale):
    probes = [q for q in load(DEV)[locale] if q.expected is None]
    figures = evaluate(library, locale, probes)
    print(f"\nFAQ {locale} off-topic probes answered confidently: {figures.wrong_confident}")
    assert len(figures.wrong_confident) <= 0.1 * len(probes)


@pytest.mark.parametrize("locale", LOCALES)
def test_fresh_questions_of_the_dev_set(library, locale):
    """The dev set's answerable questions, written from the topics before the second round of
    phrasings (bench/README.md): a regression guard well below today's figures."""
    questions = [q for q in load(DEV)[locale] if q.expected is not None]
    figures = evaluate(library, locale, questions)
    print(f"\nFAQ {locale} dev answerable: {figures.line()}")
    assert len(questions) >= 100
    assert figures.top1_share >= 0.75
    assert figures.offered_share >= MIN_OFFERED[None]
    assert len(figures.wrong_confident) <= 2


@pytest.mark.parametrize("locale", LOCALES)
def test_heldout_half_is_reported(library, locale):
    """Reported, not asserted: a floor here would invite tuning on the held-out half."""
    questions = load(HELDOUT[locale])[locale]
    figures = evaluate(library, locale, questions)
    print(f"\nFAQ {locale} held-out half ({HELDOUT[locale]}): {figures.line()}")
    assert figures.answerable + figures.unanswerable == len(questions)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_entry_answers_its_own_question_and_every_phrasing_has_a_searchable_word(library, locale):
    index = library.faq_index(locale)
    unanswered = []
    for entry in library.faq(locale):
        found = library.ask(locale, entry.question)
        if not (found and found[0][0].id == entry.id and found[0][1].confident):
            unanswered.append((entry.id, [e.id for e, _hit in found]))
    assert unanswered == []
    empty = [a for e in library.faq(locale) for a in e.alternatives if not index.query_terms(a)]
    assert empty == [], "a phrasing of stop words only matches nothing"


def test_english_questions_are_searched_in_the_english_faq(library):
    [(entry, hit), *_] = library.ask("en", "What does taking part cost?")
    assert entry.id == "kosten" and hit.confident
    assert "free of charge" in entry.answer
    [(entry, _hit), *_] = library.ask("de", "Was kostet die Teilnahme?")
    assert "kostenlos" in entry.answer


def test_both_languages_have_the_same_entries_and_figures(library):
    german = {e.id: e for e in library.faq("de")}
    english = {e.id: e for e in library.faq("en")}
    assert list(german) == list(english)

    def figures(text: str) -> list[str]:
        # "2.126" and "2,126", "24,4" and "24.4": the same figure
        return sorted(re.sub(r"[.,]", "", n) for n in re.findall(r"\d[\d.,]*\d|\d", text))

    for entry_id, entry in german.items():
        assert figures(entry.answer) == figures(english[entry_id].answer), entry_id
        assert entry.source == english[entry_id].source, entry_id


def test_umlauts_case_and_ae_spelling_are_the_same():
    assert words("Grundsätze DÜRFEN") == words("grundsaetze duerfen")
    assert stem("kleinstaedten") == stem("kleinstädte".replace("ä", "ae"))


def _index(*entries: FaqEntry, language: Language | None = None) -> Index:
    return Index.build(faq_docs(list(entries)), FAQ_WEIGHTS, language)


def test_compound_words_split_into_known_words():
    index = _index(
        FaqEntry("tandem", "Was ist ein Tandem?", "Zwei Bürgermeister tauschen sich aus.", tags=("partner",)),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    [hit, *_] = index.search("Tandempartner")
    assert hit.id == "tandem" and hit.confident


def test_a_compound_with_a_verb_as_its_head_splits_but_not_against_stems():
    index = _index(
        FaqEntry("anmeldung", "Wie kann sich eine Stadt anmelden?", "Bei der Koordination.", tags=("frist",)),
        FaqEntry("wohnen", "Welche Themen gibt es?", "Wohnen.", tags=("standort", "sitz")),
    )
    [hit, *_] = index.search("Gibt es eine Anmeldefrist?")
    assert hit.id == "anmeldung" and hit.confident
    # "wohn" is only a stem of "Wohnen": the compound stays unknown, a topic of its own
    assert index._split("wohnsitz") == []


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


def test_synonyms_find_the_entry_by_the_words_people_use():
    entries = (
        FaqEntry("kosten", "Was kostet die Teilnahme?", "Nichts bekannt."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    plain = _index(*entries)
    assert plain.search("Fallen Gebühren an?") == []
    with_synonyms = _index(*entries, language=Language("de", {"kosten": ["Gebühr", "Teilnahmebeitrag"]}))
    [hit, *_] = with_synonyms.search("Fallen Gebühren an?")
    assert hit.id == "kosten" and hit.confident
    assert with_synonyms.search("Gibt es einen Teilnahmebeitrag?")[0].id == "kosten"


def test_a_separable_verb_split_by_the_question_is_joined_again():
    index = _index(
        FaqEntry("anmeldung", "Wie kann ich mich anmelden?", "Bei der Koordination."),
        FaqEntry("daten", "Wie lösche ich meine Daten?", "Mit !profil löschen."),
    )
    [hit, *_] = index.search("Wie melde ich mich an?")
    assert hit.id == "anmeldung" and hit.confident


def test_a_lower_case_word_in_a_german_question_weighs_less_than_a_noun():
    index = _index(
        FaqEntry("themen", "Um welche Themen geht es?", "Wohnen, Klima."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    [verb] = index.search("Welche Themen werden behandelt?")
    [noun] = index.search("Welche Themen hat das Wetter?")
    assert verb.id == noun.id == "themen"
    assert verb.confidence > noun.confidence


def test_a_topic_word_found_only_in_an_answer_does_not_make_a_role_word_an_answer():
    index = _index(
        FaqEntry("werkstatt", "Was macht eine Stadt in der Lernwerkstatt?", "Sie baut einen Prototyp."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    # "Stadt" (who asks) is in the question, "Prototyp" (what about) only in the answer
    [hit] = index.search("Prototyp für eine Stadt")
    assert hit.id == "werkstatt" and not hit.confident
    [hit] = index.search("Prototyp in der Lernwerkstatt")
    assert hit.id == "werkstatt" and hit.confident
    # a question of role words only is about them
    [hit] = _index(
        FaqEntry("akademie", "Was ist die Kleinstadtakademie?", "Ein Angebot."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    ).search("Kleinstadtakademie?")
    assert hit.id == "akademie" and hit.confident


def test_role_words_weigh_less_in_any_form():
    index = _index(
        FaqEntry("mitmachen", "Welche Städte dürfen mitmachen?", "Kleinstädte.", tags=("stadt",)),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    factors = {t.term: t.factor for t in index.query_terms("Städte und eine Stadt beim Kongress")}
    assert factors == {stem("stadt"): ROLE, stem("kongress"): 1.0}
    english = _index(
        FaqEntry("who", "Which towns may take part?", "Small towns."),
        FaqEntry("congress", "When is the congress?", "In June."),
        language=Language("en"),
    )
    assert {t.factor for t in english.query_terms("towns")} == {ROLE}


def test_a_question_of_role_words_only_needs_a_clear_lead():
    def hit(lead: float, topical: bool) -> Hit:
        return Hit("a", 1.0, confidence=1.0, lead=lead, strong=True, topical=topical)

    assert hit(1.3, topical=True).confident
    assert not hit(1.3, topical=False).confident
    assert hit(2.0, topical=False).confident


@pytest.mark.parametrize(
    ("locale", "question"),
    [
        ("de", "Wie viele Einwohner hat Zwönitz?"),  # a finalist of the site competition
        ("de", "Wie groß ist Bad Lobenstein?"),  # a town of a Modellvorhaben
        ("en", "How many inhabitants does Zwönitz have?"),
        ("en", "Who is the mayor of Mölln?"),
    ],
)
def test_a_fact_about_one_town_is_not_answered_by_an_entry_that_only_names_the_town(
    library, locale, question
):
    [(entry, hit), *_] = library.ask(locale, question)
    assert hit.town_fact and not hit.confident, entry.id


def test_a_frequent_english_verb_or_a_figure_weighs_less_than_a_noun():
    index = _index(
        FaqEntry("pilot", "How did the trial run?", "From 2019 to 2023."),
        FaqEntry("sponsor", "Who is behind the academy?", "A ministry.", tags=("organisation",)),
        FaqEntry("who", "May a municipality of 3,000 inhabitants join?", "Small towns may."),
        language=Language("en"),
    )
    assert index.search("Who runs the organisation?")[0].id == "sponsor"
    assert index.search("Our organisation has 3,000 members")[0].id == "sponsor"


def test_english_uses_the_english_stemmer_and_stop_words():
    index = _index(
        FaqEntry("kosten", "What does taking part cost?", "Unknown.", tags=("fee",)),
        FaqEntry("kongress", "When is the congress?", "In June."),
        language=Language("en"),
    )
    [hit, *_] = index.search("Are there any fees?")
    assert hit.id == "kosten" and hit.confident
    assert index.search("the congresses")[0].id == "kongress"


def test_ranking_is_deterministic(library):
    questions = [q.text for q in load("tuning")["de"][:10]]
    first = [library.ask("de", q) for q in questions]
    again = [load_library().ask("de", q) for q in questions]

    def ranked(results):
        return [[(e.id, h.score) for e, h in r] for r in results]

    assert ranked(first) == ranked(again)


def test_content_check_reports_a_word_listed_twice_in_the_synonyms(tmp_path):
    from config.content import load_synonym_file

    path = tmp_path / "faq" / "synonyms.de.yaml"
    path.parent.mkdir()
    path.write_text(
        "synonyms:\n  kosten: [Gebühr, Entgelt]\n  foerderung: [Zuschuss, gebühr]\n  leer: []\n",
        encoding="utf-8",
    )
    synonyms, problems = load_synonym_file(path, tmp_path)
    assert synonyms["kosten"] == ("Gebühr", "Entgelt") and synonyms["foerderung"] == ("Zuschuss",)
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (3, "'gebühr' is listed for 'foerderung' and for 'kosten' (line 2)"),
        (4, "'leer': give a word and a list of other words for it"),
    ]
    path.write_text("- nur eine Liste\n", encoding="utf-8")
    assert [p.line for p in load_synonym_file(path, tmp_path)[1]] == [1]


@pytest.mark.parametrize("locale", LOCALES)
def test_no_two_synonym_lines_share_a_stem(library, locale):
    """Variants are matched by their stems: two lines with a stem in common would silently take
    each other's words ("participants" and "participate" both stem to "particip")."""
    language = Language(locale)
    owner: dict[tuple[str, ...], str] = {}
    shared = []
    for canonical, variants in library.content.synonyms[locale].items():
        for variant in (canonical, *variants):
            key = tuple(language.stem(w) for w in WORD_RE.findall(fold(variant)))
            if owner.setdefault(key, canonical) != canonical:
                shared.append((variant, canonical, owner[key]))
    assert shared == []


def test_a_word_whose_case_says_nothing_takes_the_case_the_content_writes_it_in():
    index = _index(
        FaqEntry("coaching", "Gibt es Coaching vor Ort?", "Die Akademie bietet Coaching an."),
        FaqEntry("angebot", "Was bietet die Akademie?", "Austausch."),
        FaqEntry("daten", "Was wird gespeichert?", "Ihr Profil wird gespeichert."),
    )
    # "Bietet" opens the sentence, so its capital says nothing: the content writes it in lower
    # case, a verb, and the noun "Coaching" decides
    terms = {t.term: t.factor for t in index.query_terms("Bietet die Akademie Coaching an?")}
    assert terms[stem("coaching")] == 1.0 and terms[stem("bietet")] < 1.0
    [hit, *_] = index.search("Bietet die Akademie Coaching an?")
    assert hit.id == "coaching" and hit.confident
    # a question typed in lower case: the same
    assert {t.term: t.factor for t in index.query_terms("bietet ihr coaching")}[stem("bietet")] < 1.0
    # without a noun, the verb is the topic
    assert {t.factor for t in index.query_terms("Was wird über mich gespeichert?")} == {1.0}


def test_a_zu_infinitive_is_the_verb_itself():
    assert words("um teilzunehmen") == words("teilnehmen") == ["teilnehmen"]
    assert words("Was ist nötig, um sich anzumelden?")[-1] == "anmelden"
    assert words("zuzuordnen") == ["zuzuordnen"]  # no particle before the "zu"


def test_a_compound_that_starts_like_a_known_one_is_not_its_typo():
    index = _index(
        FaqEntry("rat", "Was ist ein Bürgerrat?", "Zufällig geloste Bürger beraten."),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    assert index.search("Bürgerat")[0].id == "rat"  # a typo
    found = index.search("Wann hat das Bürgeramt geöffnet?")
    assert not found or not found[0].confident  # another compound: Bürger + Amt


def test_a_phrasing_of_one_word_does_not_claim_the_topic_of_another_entrys_question():
    index = _index(
        FaqEntry("benutzen", "Wie benutze ich den Bot?", "Schreiben Sie !hilfe."),
        FaqEntry("daten", "Welche Daten speichert der Bot?", "Ihr Profil.", ("Was weiß der Bot über mich?",)),
    )
    # "Was weiß der Bot über mich?" is "bot" once its stop words are gone: no bonus for it
    [first, *_] = index.search("Was kann der Bot?")
    assert not (first.id == "daten" and first.confident)
    assert frozenset({stem("bot")}) not in index.phrasings[1]


@pytest.mark.parametrize(
    ("locale", "question"),
    [("de", "Was verdient eine Koordinatorin?"), ("en", "How much does a coordinator earn?")],
)
def test_what_someone_earns_is_not_answered(library, locale, question):
    [(entry, hit), *_] = library.ask(locale, question)
    assert hit.town_fact and not hit.confident, entry.id


def test_a_german_question_opening_with_an_unknown_word_opens_with_a_verb():
    index = _index(
        FaqEntry("themen", "Um welche Themen geht es?", "Demografie, Wohnen.", tags=("demografie", "wohnen")),
        FaqEntry("kongress", "Wann ist der Kongress?", "Im Juni."),
    )
    # "Hilft" is no word of the content; opening a question it is a verb, not an unknown topic
    [hit, *_] = index.search("Hilft es bei Demografie und Wohnen?")
    assert hit.id == "themen" and hit.confident and not hit.stranger
    # inside the question, an unknown noun still is a topic of its own
    assert index.search("Gibt es Demografie und Wohnen im Spielplatzbau?")[0].stranger


@pytest.mark.parametrize(
    ("locale", "question", "expected"),
    [
        ("de", "Ich bin Kämmerin in unserer Stadt: Was kostet die Teilnahme?", "kosten"),
        ("en", "I am the treasurer of our town: what does taking part cost?", "kosten"),
    ],
)
def test_who_asks_is_no_topic_even_if_no_entry_names_it(library, locale, question, expected):
    [(entry, hit), *_] = library.ask(locale, question)
    assert entry.id == expected and hit.confident and not hit.stranger


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # a place is the town itself, not a topic (the tour visits places, too)
        ("At what population is a place called a large city?", "stadttypen"),
        # German funding compounds in an English question
        ("Any Fördergelder from the academy?", "foerderung"),
        # a human is whom to contact, even with the bot named
        ("Can I reach a human instead of the bot?", "kontakt"),
        # "fase", as Dutch and some German writers spell the phase
        ("How long did the pilot fase last?", "pilotphase"),
        # who pays for the academy asks who is behind it ...
        ("Who pays for the Kleinstadtakademie?", "wer-steckt-dahinter"),
        # ... who pays for the town's projects asks about funding
        ("Who funds projects in our town?", "foerderung"),
    ],
)
def test_english_words_for_the_town_funding_and_a_human_find_their_entry(library, question, expected):
    [(entry, hit), *_] = library.ask("en", question)
    assert entry.id == expected and hit.confident


def test_an_english_up_is_no_topic_word_but_signing_up_is(library):
    """ "clean up", "follow up", "look it up": the particle names nothing ("up to" neither)."""
    english = library.language("en")
    assert english.words("Can I clean up my data?") == ["clean", "data"]
    assert english.words("How do we sign up?") == ["registration"]


def test_an_english_council_member_is_who_asks_not_a_member_who_joins(library):
    english = library.language("en")
    assert english.words("Can council members take part?") == ["councillor", "takepart"]


def test_an_english_who_question_prefers_the_entry_that_answers_who():
    index = _index(
        FaqEntry("cost", "What does joining cost?", "Nothing.", ("Do we pay to join?", "Is joining free?")),
        FaqEntry("who", "Who may join?", "Small towns."),
        language=Language("en"),
    )
    [hit, *_] = index.search("Who can join?")
    assert hit.id == "who" and "who" in hit.matched  # the question word counts as a cue
    assert index.search("What does joining cost?")[0].id == "cost"


def test_an_english_word_ending_in_free_means_without_it():
    index = _index(
        FaqEntry(
            "principles", "What are the principles?", "Exchange without hierarchy.", tags=("hierarchy",)
        ),
        FaqEntry("cost", "What does it cost?", "Nothing.", tags=("free of charge",)),
        language=Language("en", {"free of charge": ["free"]}),
    )
    [hit] = index.search("Is the exchange hierarchy-free?")
    assert hit.id == "principles" and hit.confident  # the cost entry is not even a choice
    assert index.search("Is it free?")[0].id == "cost"


def _bot_entries() -> tuple[FaqEntry, FaqEntry]:
    use = FaqEntry(
        "use",
        "How do I use the bot?",
        "Write your question.",
        alternatives=("What can the bot do?", "How does the bot work?", "Bot commands"),
    )
    data = FaqEntry(
        "data",
        "What data does the bot store?",
        "Your Matrix ID.",
        alternatives=("Is my data saved?", "What is stored about me?", "Data protection"),
    )
    return use, data


def test_english_tie_on_the_only_topic_word_goes_to_the_entry_more_about_it():
    # both entries have "bot" in their question; every phrasing of one is about it, one in
    # four of the other's: in English the first leads by more than word counts alone give
    english = _index(*_bot_entries(), language=Language("en"))
    german = _index(*_bot_entries(), language=Language("de"))  # no tie-break in German
    [best, runner_up] = english.search("What is this bot for?")
    assert (best.id, runner_up.id) == ("use", "data") and best.confident
    [plain, _] = german.search("bot")
    assert plain.id == "use" and best.lead > 1.5 * plain.lead
    assert german.about == {} and english.about[(stem("bot", "english"), 0)] == 1.0


def test_an_english_who_question_is_not_answered_by_an_entry_without_who():
    index = _index(
        FaqEntry(
            "funding",
            "Is there funding for our town?",
            "Ask the coordinators.",
            alternatives=("How is the academy funded?", "Can we get a grant?"),
            tags=("funding", "money"),
        ),
        FaqEntry("sponsor", "Who is behind the academy?", "A federal ministry.", tags=("ministry",)),
        language=Language("en"),
    )
    found = index.search("Who funds the academy?")
    assert found[0].id == "funding" and not found[0].confident and found[0].cue_elsewhere
    assert "sponsor" in [hit.id for hit in found[:3]]
    # without "who" the funding entry answers
    assert index.search("How is the academy funded?")[0].confident


def test_an_english_who_in_an_answer_only_does_not_answer_who():
    """An example question in the answer ("Who can take part?") does not make the entry one
    that answers who: the entry whose own words have "who" is offered beside it."""
    index = _index(
        FaqEntry(
            "use",
            "How do I use the bot?",
            'Write your question, for example "Who can take part?".',
            alternatives=("How do I ask the bot something?", "Which commands does the bot know?"),
            tags=("bot", "help", "commands"),
        ),
        FaqEntry(
            "contact",
            "Whom can I contact?",
            "The coordinators.",
            alternatives=("Who is my contact person?", "Where do I get help when the bot does not know?"),
            tags=("contact", "help"),
        ),
        language=Language("en"),
    )
    found = index.search("Who can I ask if the bot can't help?")
    assert found[0].id == "use" and found[0].cue_elsewhere and not found[0].confident
    assert "contact" in [hit.id for hit in found[:3]]
    # without "who" the bot entry answers
    assert index.search("How do I ask the bot?")[0].confident


def test_an_english_who_after_a_word_for_people_is_no_question_of_who():
    """ "staff who use it" is a relative clause: the question is what is stored, not who."""
    english = Language("en")
    assert "who" not in english.words("Which details does it keep about staff who use it?")
    assert "who" not in english.words("Can mayors who took part advise us?")
    assert "who" in english.words("Who keeps the details?")
    assert "who" in english.words("I'd like to know who keeps the details.")
    index = _index(
        FaqEntry(
            "stored",
            "Which data does the bot store?",
            "Your user ID and your settings.",
            alternatives=("What does the bot keep about me?", "Which personal details are stored?"),
            tags=("data", "privacy"),
        ),
        FaqEntry("contact", "Who is my contact person?", "The coordinators.", tags=("contact",)),
        language=english,
    )
    [found, *_] = index.search("Which personal details does the bot store about staff who use it?")
    assert found.id == "stored" and found.confident and not found.cue_elsewhere


@pytest.mark.parametrize("locale", LOCALES)
def test_an_english_figure_no_entry_has_does_not_weigh_against_the_answer(locale):
    synonyms = {"population": ["inhabitants"], "take part": ["participate"]}
    index = _index(
        FaqEntry(
            "who",
            "Who can take part?",
            "Small towns.",
            alternatives=("Can our municipality take part?", "Which population counts?"),
            tags=("population", "eligible"),
        ),
        FaqEntry("cost", "What does taking part cost?", "Nothing."),
        language=Language(locale, synonyms),
    )
    [with_figure, *_] = index.search("inhabitants 30,000 take part")
    [without, *_] = index.search("inhabitants take part")
    assert with_figure.id == without.id == "who"
    if locale == "en":
        assert with_figure.confidence == without.confidence and with_figure.confident
    else:  # German keeps an unknown figure as a light unknown word
        assert with_figure.confidence < without.confidence


def test_an_english_mayor_asks_a_town_fact_only_in_a_who_question(library):
    [(entry, hit), *_] = library.ask("en", "I am writing for our mayor: how do we sign up?")
    assert entry.id == "anmeldung" and hit.confident and not hit.town_fact
    [(entry, hit), *_] = library.ask("en", "Who is the mayor of Zwönitz?")
    assert hit.town_fact and not hit.confident, entry.id


@pytest.mark.parametrize("question", ["Who are you?", "how do you work"])
def test_the_bot_asked_about_itself_in_english_is_about_the_bot(library, question):
    [(entry, hit), *_] = library.ask("en", question)
    assert entry.id == "bot-benutzen" and hit.confident
    found = library.ask("en", "What do you offer small towns?")  # "you" is the academy here
    assert not found or found[0][0].id != "bot-benutzen"


def test_a_long_english_question_telling_its_case_is_answered_directly(library, monkeypatch):
    """Ten words of story around the topic (the treasury, next year's budget) do not keep the
    entry that clearly leads from answering; the same entry is only offered without the
    long-question rule (and without the examples' model, which has learned such stories), and a
    short question keeps the strict rule."""
    story = (
        "The Kämmerei asks whether we must plan a fee in next year's budget if our town takes part "
        "in the academy's exchange"
    )
    [(entry, hit), *_] = library.ask("en", story)
    assert (entry.id, hit.long, hit.confident) == ("kosten", True, True)
    assert hit.confidence < 0.6  # the story's words are not covered: only the rule answers it
    monkeypatch.setattr(library.faq_index("en").language, "long_question", 0)
    monkeypatch.setattr(library.faq_index("en"), "classifier", None)  # the rules alone
    [(entry, hit), *_] = library.ask("en", story)
    assert (entry.id, hit.long, hit.confident) == ("kosten", False, False)
    monkeypatch.undo()
    [(_entry, hit), *_] = library.ask("en", "opening hours of the Kämmerei")
    assert not hit.long and not hit.confident
