"""Finding the FAQ entry or module someone means, however they type it.

Deterministic and explainable, no remote service, one ``Language`` per locale (German and
English: Snowball stemmer, stop words, the synonym list of ``faq/synonyms.<locale>.yaml``):

1. Normalise: lower case, umlauts as ae/oe/ue/ss (``config.topics.fold``), words only.
2. Synonyms: words and phrases people use for the same thing ("Gebühr", "Teilnahmebeitrag")
   become the word the content uses ("kosten"), matched on their stems, in the question and
   in the entries alike. Then stop words out and Snowball stemming.
3. Compounds: a long word that is not in the index is split into known words
   ("Bürgermeistertandem" → "buergermeister" + "tandem"); index words are split the same way.
4. Typos: a query word the index does not know is replaced by the closest index word or
   synonym (rapidfuzz ratio ≥ 85, ≥ 80 for long words), counted by how close it is.
5. Rank with BM25F over weighted fields (question and alternative phrasings highest, then tags,
   then the answer).
6. Confidence: the share of the query's weight (IDF) that the best entry covers (a word found
   only in the answer counts half). Words the index has never seen (weather, football) weigh
   the most, so off-topic questions stay below the threshold and get suggestions or nothing
   instead of a wrong answer. A lower share suffices when the best entry clearly leads.
7. English only (no noun capitals to tell the topic): a tie on the question's only topic word
   goes to the entry more of whose phrasings carry it (``ABOUTNESS``, with ``ABOUT_LEAD``); a
   figure or a frequent verb no entry has weighs (almost) nothing; "who" must be answered by an
   entry that answers who (``DECIDING_CUES``); a long question that tells its case around the
   topic may be answered with less of it covered (``LONG_QUESTION``).
8. Learned from examples (``Classifier``): questions people asked, each labelled with the
   entry that answers it or with none (``faq/examples.<locale>.yaml``), plus the entries' own
   questions and phrasings, train a naive Bayes model over what the search reads of a question.
   Where the rules above are not sure, the bot still answers directly if the model names the
   same entry as the ranking, with a probability of at least ``LEARNED``, or another entry
   with at least ``PROMOTED`` (which then goes first); where they are sure but the model names
   another entry or none with ``DOUBTED``, it offers choices instead.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import Stemmer

from config.content import CONTENT_DIR, Content, FaqEntry, Module, Problem, load_content
from config.topics import default_topics, fold

if TYPE_CHECKING:
    from commands.context import Services

WORD_RE = re.compile(r"[a-z0-9]+")
CODE_SPAN = re.compile(r"`[^`]*`")
CONFIDENT = 0.6  # share of the query weight the best hit must cover ...
CONFIDENT_LEADING = 0.35  # ... or this much, if it scores LEAD times the runner-up
LEAD = 1.5
CONTESTED = 0.35  # share of the query weight the runner-up covers and the best hit does not
MIN_LEAD = 1.1  # closer than this to the runner-up: ambiguous ("Austausch"), offer both
FUZZY_CUTOFF = 80  # rapidfuzz ratio for words of 8 letters or more
FUZZY_CUTOFF_SHORT = 85  # for 6 and 7 letters (shorter words are not corrected)
FUZZY_SURE = 90  # a guess this close counts like the word itself (one letter off in a long word)
ANSWER_ONLY = 0.5  # a query word found only in the answer covers this share of its weight
COMPOUND_PART = 0.5  # a part of an indexed compound ("jugend" in "Jugendparlament") counts this much
PHRASING_BONUS = 1.5  # the question has the very words of an entry's question or phrasing
PHRASING_FIELDS = ("question", "alternatives", "title")
LOWER_KNOWN = 0.5  # a known word written in lower case in a cased German text (a verb)
MISSING_KNOWN = 2.0  # a query word other entries know but the best one lacks weighs this much more
TOPIC_FACTOR = 0.8  # a query word counting at least this much names the topic (not a verb,
#                    a role word, a question word or a figure)
STRONG_FIELD = 1.0  # fields weighted at least this much (not the answer or body) count fully
K1 = 1.2
B = 0.75
LEARNED = 0.99  # the examples' model names the best hit with at least this probability
DOUBTED = 0.8  # ... or another entry (or none) with at least this: the rules' answer is withheld
PROMOTED = 0.99  # where the rules are unsure, another entry the model names goes first with this
LEARNED_SMOOTHING = 1.0  # Laplace: a word never seen with an entry counts as seen once
STRANGER = "?"  # the model's feature for a question with a word no entry has (a town's name, say)


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent words that say nothing about the topic (folded spelling), plus the question words
# and fillers people put around a question.
_GERMAN_STOP_WORDS = """
a ab aber alle allem allen aller alles als also am an ans auch auf aus bei beim bin bis bist bitte
da dabei damit dann das dass dein deine dem den denn der des dich die dir doch dort du durch
ein eine einem einen einer eines er es etwa euch euer eure fuer gibt gibts geht hab habe haben hat
hallo hi hier ich ihr ihre im in ins ist ja jemand kann kannst koennen koennte man mein meine mich gab
mir mit moechte muss muessen nach nicht noch nun nur ob oder ohne sagen sag sein seine sich sie
sind so soll sollte ueber um und uns unser unsere unter vom von vor war was weiss welche welcher
welches wenn wer werden wie wieso wir wird woher wohin zu zum zur guten tag danke moin servus
erklaeren erklaer erzaehl mal eigentlich genau gerne gern heisst bedeutet infos info informationen
weiter weitere weiteren mehr gut viel viele sehr schon heute morgen jetzt immer dazu davon
funktioniert funktionieren klappt laeuft machen macht tun finde finden bekomme bekommen lautet
gelten gilt fallen habt versteht verstehst kurz diese dieser dieses dies direkt ueberall leute
wieviel wieviele eigentlich einfach wirklich andere anderen anderer anderes waren ging gehen
gemeint meint meinen ueberhaupt lassen laesst selbst passiert passieren geschah ihnen ihrem ihren ihrer ihres
gehoert gehoeren gehoerst gehoerte brauche brauchen braucht brauchst bad insgesamt
braeuchte braeuchten damals ausgerechnet konkret ne halt eben
"""
_ENGLISH_STOP_WORDS = """
a about actually all also am an and any anything are as at be been being but by can could do does
doing done for from get gets getting got had has have having hello hi how i if in into is it its
just know let like me more much my of on or our ours please really so some tell than thanks that
the their them then there these they this those to too us very want was we well were what whats
many lot lots get got here way possible able need needs wants like ok okay yes someone somebody
anyone anybody something thing things kind sort bit exactly currently basically still mean did
explain explained describe briefly brief short few words work works worked part
means meant other others another
ourselves yourself yourselves themselves myself itself
which will with would you your yours s re ve ll d m t
only even already again maybe perhaps yet ever anyway etc bad altogether overall
should shall must might may ought whether while although though unless until since because
down out off over above below between through during before after onto upon within without
each every both either neither such same else whose under one
somewhere somehow anywhere pls plz don doesn didn isn aren wasn weren haven hasn couldn wouldn
against roughly approximately properly kinds sorts types per
around ago really always usually generally typically simply just
list lists overview summary rundown
no not nothing everything everyone everybody nobody none longer anymore instead otherwise quite
rather pretty fairly most least less however furthermore besides therefore now soon almost nearly
hey hiya heya yo hallo dear greetings cheers thx thank ty btw quick q u ur r ya yeah smth sth
wich wat wats whats wht hw cud cn abt bout pls plz kinda sorta gonna wanna gotta realy rly
he she him his her hers himself herself across beyond different differently apparently probably
supposedly absolutely somewhere somewere somewher anywere officer officers
apart series anyting anythin anythng somthing nowadays up
"""
# Particles of German separable verbs, when they end a question ("Wie melden wir uns an?"), and
# verbs that take them although they are stop words ("Welche Städte machen mit?")
SEPARABLE_PARTICLES = word_set(
    "an ab auf aus bei ein fest her hin los mit nach teil vor weg zu zurueck zusammen"
)
SEPARABLE_BASES = word_set(
    "machen macht mache geht gehen gibt geben kommt kommen finde findet finden tun laeuft"
)
# Question words that hint at the kind of answer ("Wann …", "Wie lange …"): they count, but
# less than the words that name the topic
CUE_WORDS = {
    "de": word_set("wann warum weshalb wo wofuer wozu wen wem lange oft anzahl"),
    "en": word_set("when why where who whom long often number"),
}
CUE = 0.3  # a cue word counts this share of its weight
# Cue words that decide between entries: "Who funds the academy?" asks who is behind it, not
# about funding; if the best entry lacks the cue and one of the next two has it, the bot offers
# choices (English only)
DECIDING_CUES = {"de": frozenset[str](), "en": word_set("who")}
# English "who" after a word for people is a relative pronoun ("staff who use it", "mayors who
# took part"), not the question: it is dropped there. The words for people are these and the
# role words (``ROLE_WORDS``: mayors, staff, towns, the council ...)
RELATIVE_WHO_AFTER = word_set(
    "people person persons anyone anybody someone somebody everyone everybody those one "
    "user users member members officer officers coordinator coordinators"
)
# Frequent English verbs: English does not capitalise nouns, so these stand in for the German
# rule that a lower-case word is rarely the topic: a known one counts LOWER_KNOWN ("Who runs
# the academy?" is not about how the pilot phase ran), an unknown one LOWER_UNKNOWN. Compared
# by stem, so "runs" and "running" count as "run". Verbs that name a topic of the FAQ (join,
# apply, register, pay, fund, delete, store, contact, visit, meet, learn, start) are not here.
LIGHT_WORDS = {
    "de": frozenset[str](),
    "en": word_set(
        "define defined choose chose chosen live lives lived living decide decided pick picked "
        "give gives gave given take takes took taken make makes made go goes went gone come comes "
        "came see sees saw seen say says said tell told use used using know known think look "
        "looking find found help helps keep let put show shows try tried call run ran count "
        "happen mean become seem feel leave left bring brought hold held stand stood set turn "
        "move believe write wrote read provide include continue change lead led understand "
        "follow stop speak spoke allow spend grow open walk win won remember consider appear "
        "buy bought wait serve send sent expect stay fall fell remain suggest raise pass require "
        "deal dealt handle treat belong concern involve exist matter cover face carry ask "
        "receive received hear heard want wanted need needed guide represent "
        # what is on offer or possible is not what it is about ("Do you offer coaching?")
        "offer offers offered available availability possible possibility possibilities "
        "opportunity opportunities option options day days love loves loved "
        # adjectives that do not name a topic either
        "real actual new good great best whole general current main own big next last exact special "
        "upcoming previous latest recent high low higher lower two three "
        # nor do words that qualify the case ("several towns", "a tiny village", "in general
        # terms") or the bot's users
        "detail term terms several various certain "
        "particular specific similar entire typical usual normal simple easy quick important "
        "interesting necessary sure clear ready tiny proper local separate separately together "
        "hear read remember commit prepare switch end year years month months week weeks time "
        "times talk people user users "
        # and what people say around their question ("my boss mentioned it", "for a speech")
        "mention mentioned dominate built bother care engage wonder curious hope wish relevant "
        "close closely directly personally moment case situation presentation article speech "
        "fine happy glad unsure confused clarify stuff related relate regarding basis huge massive "
        "enormous little slowly later early late today past type typing typed true "
        # how the town is doing (its case, not the topic: "our budget is tight", "we are stuck")
        "neighbour neighbours neighbouring neighbor neighbors neighboring sentence sentences stuck "
        "struggle struggles struggling worried worry worries tight poor correct correctly became "
        "system systems english attached attach redesign redesigning renovate renovating refurbish "
        "revamp convert converting rebuild rebuilding "
        # when it happened or will ("the council voted yesterday", "a visit next spring")
        "yesterday tomorrow tonight morning afternoon evening weekend spring summer autumn winter "
        "january february march april june july august september october november december "
        "recently lately vote voted votes voting favour favor earlier former formerly"
    ),
}
# Words that say who asks or where, not what about ("Bürgermeister", "Stadt"): they count less,
# so "Wie viel verdient ein Bürgermeister?" is not taken for a question about tandems
ROLE_WORDS = {
    "de": word_set(
        "buergermeister stadt gemeinde kleinstadt kleinstadtakademie "
        # the town staff who ask ("bin Hauptamtsleiterin in …")
        "hauptamtsleiter hauptamtsleiterin kaemmerer kaemmerin sachbearbeiter sachbearbeiterin "
        "amtsleiter amtsleiterin verwaltungsmitarbeiter verwaltungsmitarbeiterin "
        "kaemmerei hauptamt bauamt finanzabteilung"
    ),
    "en": word_set(
        "mayor town municipality smalltown kleinstadtakademie clerk treasurer councillor dept department "
        "councillors councilor councilors "
        # the staff who ask, and the country every town of the FAQ lies in
        "staff employee employees colleague colleagues germany boss journalist reporter student "
        "researcher intern trainee secretary deputy manager hauptamtsleiter hauptamtsleiterin "
        "kaemmerer kaemmerin amtsleiter amtsleiterin sachbearbeiter sachbearbeiterin "
        "hauptamt bauamt ordnungsamt kaemmerei "
        # the council and the administration that decide, and the district around the town
        "council councils stadtrat gemeinderat hall rathaus stadtverwaltung verwaltung landrat landraetin "
        "landkreis landkreise district districts county counties "
        "datenschutzbeauftragter datenschutzbeauftragte "
        # where the town lies says who asks, not what about (the German Länder in English)
        "bavaria saxony thuringia hesse brandenburg westphalia rhineland palatinate saarland "
        "baden wuerttemberg wurttemberg bayern sachsen niedersachsen thueringen hessen nordrhein "
        "westfalen pfalz vorpommern "
        "mecklenburg pomerania anhalt holstein schleswig "
        # a place is the town that asks ("from how many inhabitants is a place a large city")
        "place places"
    ),
}
ROLE = 0.5
# Words that ask for a fact about one town (how many live there, how big it is, who its mayor
# is): the FAQ has no such facts, and an entry that merely names the town ("Zwönitz" among the
# site competition's finalists) must not answer "Wie viele Einwohner hat Zwönitz?". Such a
# question is answered directly only by an entry that has the word among its own words.
TOWN_FACT_WORDS = {
    "de": word_set(
        "einwohner einwohnerzahl bevoelkerung gross buergermeister "
        # what someone earns: no entry holds it either
        "verdienen verdient verdienst gehalt gehaelter besoldung verguetung lohn einkommen"
    ),
    "en": word_set(  # inhabitants, residents: synonyms
        "population big large size salary salaries earn earns earning earnings wage wages income"
    ),
}
# Words that ask a fact about one town only in a question that asks who: "Who is the mayor of
# Mölln?" (English; "Our mayor asked me to register the town" is about signing up)
TOWN_FACT_WHO = {"de": frozenset[str](), "en": word_set("mayor")}
LOWER_UNKNOWN = 0.35  # an unknown word written in lower case in a cased German text (a verb)
# An unknown figure ("We have 30,000 inhabitants"): German keeps it as a light unknown word;
# English drops it (the number a town gives is its case, never the topic, and English lacks
# the German case cues that keep such questions confident otherwise)
UNKNOWN_FIGURE = {"de": LOWER_UNKNOWN, "en": 0.0}
# An unknown word that is light by the language's own lists (English ``LIGHT_WORDS``: "Who runs
# the academy?", "Why was Wittenberge chosen?"): a verb no entry uses says nothing of the topic
UNKNOWN_LIGHT = {"de": LOWER_UNKNOWN, "en": 0.1}
# How much an entry's score for a word grows with the share of its own phrasings (question and
# alternatives) that carry the word: with two entries sharing the question's only topic word
# ("bot": using the bot, the data it stores) the one that is more about it leads. English only
# (German was tuned without it and stays as it is).
ABOUTNESS = {"de": 0.0, "en": 1.0}
# ... and the lead the best entry then needs over the runner-up to answer directly
ABOUT_LEAD = {"de": MIN_LEAD, "en": 1.15}
# A question that says a lot ("Our Stadtrat voted last week that we want to join; what is the
# first step the administration has to take?") tells its case around its topic: the words no
# entry knows are that case, not the topic, while a short question with such a word ("opening
# hours of the Bürgerbüro") asks about it. From this many query words on, an entry that
# clearly leads and covers a fair part answers directly (English only: German was tuned and
# reported without it, and its case cues already tell the topic from the story).
LONG_QUESTION = {"de": 0, "en": 8}  # query words (0: off)
LONG_LEAD = 1.3
LONG_COVERED = 0.25
DIGIT_GROUP_RE = re.compile(r"(\d)[.,](?=\d{3}\b)")
# English "hierarchy-free", "fee-free": without the thing named, which stays the topic ("free"
# alone means free of charge)
WITHOUT_SUFFIX_RE = re.compile(r"(\w)-free\b", re.IGNORECASE)
# Question shapes that name what is asked without a topic word: English "Who is it for?" asks
# for the target group as German "Für wen …?" does (that one is a synonym)
QUESTION_PATTERNS: dict[str, list[tuple[re.Pattern[str], tuple[str, ...]]]] = {
    "en": [
        (re.compile(r"^who\b.*\bfor$"), ("target", "group")),
        # the bot asked about itself: "What can you do?", "Who are you?"
        (re.compile(r"^(what can you do|who are you|what are you|how do you work)$"), ("bot",)),
        # a bare call for help or the menu in the chat: how to use the bot
        (re.compile(r"^(help|help me|hilfe|menu|commands|options)$"), ("bot",)),
    ],
}
SENTENCE_RE = re.compile(r"[.!?;:\n]+")
SENTENCE_WORD_RE = re.compile(r"\w+")
STOP_WORDS = {"de": word_set(_GERMAN_STOP_WORDS), "en": word_set(_ENGLISH_STOP_WORDS)}
STEMMERS = {"de": "german", "en": "english"}


@lru_cache(maxsize=4)
def _stemmer(name: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(name)


@lru_cache(maxsize=40_000)
def stem(word: str, stemmer: str = "german") -> str:
    return _stemmer(stemmer).stemWord(word)


@dataclass(frozen=True)
class Word:
    text: str  # folded, synonyms replaced
    lower: bool = False  # written in lower case inside a text that capitalises its nouns
    free: bool = True  # its case says nothing: the first word of a sentence, or an uncased text
    opens: bool = False  # the first word of a sentence in a cased text: a German question that
    #                      opens with a word the content does not know opens with a verb ("Hilft …")


class Language:
    """How one locale's text becomes index words: synonyms, stop words, Snowball stemmer.

    ``synonyms`` maps a word the content uses to the words and phrases people use for it
    (``faq/synonyms.<locale>.yaml``). A variant is recognised by its stems, so inflected forms
    match too, and is replaced by the content's word before stop words are dropped (phrases may
    contain stop words: "vor Ort", "sign up")."""

    def __init__(self, code: str, synonyms: Mapping[str, Iterable[str]] | None = None):
        self.code = code if code in STEMMERS else "de"
        self.stemmer = STEMMERS[self.code]
        self.stop_words = STOP_WORDS[self.code]
        self.cue_words = CUE_WORDS[self.code]
        self.deciding_cues = frozenset(self.stem(w) for w in DECIDING_CUES[self.code])
        self.role_words = ROLE_WORDS[self.code]
        self.light_words = LIGHT_WORDS[self.code]
        self.light_stems = frozenset(self.stem(w) for w in self.light_words)
        self.role_stems = frozenset(self.stem(w) for w in self.role_words)  # "Städte", "towns"
        self.town_fact_stems = frozenset(self.stem(w) for w in TOWN_FACT_WORDS[self.code])
        self.town_fact_who_stems = frozenset(self.stem(w) for w in TOWN_FACT_WHO[self.code])
        self.unknown_figure = UNKNOWN_FIGURE[self.code]
        self.unknown_light = UNKNOWN_LIGHT[self.code]
        self.aboutness = ABOUTNESS[self.code]
        self.min_lead = ABOUT_LEAD[self.code]
        self.long_question = LONG_QUESTION[self.code]
        self.phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.variants: dict[str, tuple[str, ...]] = {}  # one-word variants, for compounds and typos
        self.variant_stems: dict[str, tuple[str, ...]] = {}
        for canonical, variants in (synonyms or {}).items():
            # a term of several words is one concept, as a German compound is: "pilot phase"
            # becomes "pilotphase", so it does not match "pilot projects" by half
            named = WORD_RE.findall(fold(canonical))
            target = ("".join(named),) if named else ()
            for variant in [canonical] * (len(named) > 1) + list(variants):
                found = WORD_RE.findall(fold(variant))
                if not found or not target:
                    continue
                self.phrases[tuple(self.stem(w) for w in found)] = target
                if len(found) == 1:
                    self.variants[found[0]] = target
                    self.variant_stems[self.stem(found[0])] = target
        self.longest = max((len(key) for key in self.phrases), default=0)
        # the longest phrase each first stem opens: most words open none, so a question is not
        # looked up ``longest`` times per word
        self.opening: dict[str, int] = {}
        for key in self.phrases:
            self.opening[key[0]] = max(self.opening.get(key[0], 0), len(key))

    def stem(self, word: str) -> str:
        return stem(word, self.stemmer)

    def words(self, text: str, known: Callable[[str], bool] | None = None) -> list[str]:
        """Folded words with synonyms replaced and stop words out (not yet stemmed)."""
        return [w.text for w in self.tokens(text, known)]

    def tokens(self, text: str, known: Callable[[str], bool] | None = None) -> list[Word]:
        """``words`` with how each was written. ``known`` tells which joined separable verbs
        ("melden … an" → "anmelden") to use; without it none are joined."""
        text = DIGIT_GROUP_RE.sub(r"\1", text)  # "12.000" and "12,000" as one figure
        if self.code == "en" and "-free" in text.lower():
            text = WITHOUT_SUFFIX_RE.sub(r"\1", text)
        sentences = [SENTENCE_WORD_RE.findall(s) for s in SENTENCE_RE.split(text)]
        # German capitalises nouns: in such a text a word written in lower case after the first
        # of its sentence is a verb, an adjective or a filler, not a topic
        cased = self.code == "de" and any(w[:1].isupper() for s in sentences for w in s[1:])
        result: list[Word] = []
        for sentence in sentences:
            raw: list[tuple[str, bool, bool, bool]] = []  # word, lower case, case says nothing
            for number, original in enumerate(sentence):
                if self.code == "en" and number > 0 and original.lower() == "who":
                    before = fold(sentence[number - 1])
                    if before in RELATIVE_WHO_AFTER or self.stem(before) in self.role_stems:
                        continue
                lower = cased and number > 0 and not original[:1].isupper()
                free = not cased or number == 0
                raw += [(w, lower, free, cased and number == 0) for w in _folded_words(original)]
            if known is not None:
                raw = self._join_separated(raw, known)
            result += self._replace(raw)
            patterns = QUESTION_PATTERNS.get(self.code, ())
            folded = " ".join(item[0] for item in raw) if patterns else ""
            for pattern, words in patterns:
                if pattern.search(folded):
                    result += [Word(w) for w in words]
        return result

    def _join_separated(
        self, raw: list[tuple[str, bool, bool, bool]], known: Callable[[str], bool]
    ) -> list[tuple[str, bool, bool, bool]]:
        """A German separable verb whose particle ends the sentence, joined again if the joined
        verb is known: "Wie melden wir uns an?" → "anmelden"."""
        if self.code != "de" or len(raw) < 2 or raw[-1][0] not in SEPARABLE_PARTICLES:
            return raw
        particle = raw[-1][0]
        for position, (word, *_case) in enumerate(raw[:4]):
            if position == len(raw) - 1 or len(word) < 3:
                continue
            if word in self.stop_words and word not in SEPARABLE_BASES:
                continue
            if known(particle + word):
                return [*raw[:position], (particle + word, False, False, False), *raw[position + 1 : -1]]
        return raw

    def _replace(self, raw: list[tuple[str, bool, bool, bool]]) -> list[Word]:
        stems = [self.stem(item[0]) for item in raw] if self.phrases else []
        result: list[Word] = []
        position = 0
        while position < len(raw):
            reach = self.opening.get(stems[position], 0) if stems else 0
            for size in range(min(reach, len(raw) - position), 0, -1):
                target = self.phrases.get(tuple(stems[position : position + size]))
                if target is not None:
                    result += [Word(w, free=False) for w in target]  # the content's word
                    position += size
                    break
            else:
                word, lower, free, opens = raw[position]
                if word not in self.stop_words and len(word) > 1:
                    result.append(Word(word, lower, free, opens))
                position += 1
        return result

    def light(self, word: str) -> bool:
        """A frequent verb (English), in any of its forms."""
        return word in self.light_words or self.stem(word) in self.light_stems

    def resolve(self, word: str) -> tuple[str, ...]:
        """A known word as the content's word(s): a synonym (or a form of it) becomes its target."""
        return self.variants.get(word) or self.variant_stems.get(self.stem(word)) or (word,)


# A German zu-infinitive of a separable verb is the verb itself: "teilzunehmen" → "teilnehmen",
# "anzumelden" → "anmelden" (the particle, "zu", then a verb of at least four letters ending in n)
ZU_INFINITIVE_RE = re.compile(
    r"^(an|ab|auf|aus|bei|ein|fest|mit|nach|teil|vor|weg|zurück|zurueck|zusammen|dazu|hinzu)"
    r"zu(\w{3,}n)$",
    re.IGNORECASE,
)


def _zu_infinitive(original: str) -> str:
    return ZU_INFINITIVE_RE.sub(r"\1\2", original) if len(original) >= 8 else original


@lru_cache(maxsize=20_000)
def _folded_words(original: str) -> tuple[str, ...]:
    return tuple(WORD_RE.findall(fold(_zu_infinitive(original))))


@lru_cache(maxsize=4)
def plain_language(locale: str) -> Language:
    """The locale's language without a synonym list."""
    return Language(locale)


def words(text: str, locale: str = "de") -> list[str]:
    """Folded words without stop words (not yet stemmed)."""
    return plain_language(locale).words(text)


@dataclass(frozen=True)
class Doc:
    """One searchable item: an id and weighted text fields."""

    id: str
    fields: dict[str, str]


@dataclass(frozen=True)
class QueryTerm:
    term: str  # the index term (stem) it stands for
    factor: float  # how much it counts in the ranking: 1 for a topic word, less for a guessed
    #                word, a question word or a verb, 0 for a word no entry has
    weight: float  # its share of the query weight (IDF)
    covers: float  # how much of that weight an entry containing ``term`` covers


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    confidence: float
    matched: tuple[str, ...] = ()
    lead: float = 0.0  # the best hit's score divided by the runner-up's (0 for the others)
    strong: bool = False  # a word naming the question's topic is in the entry's question,
    #                      phrasings or tags (not just the answer)
    contested: bool = False  # the runner-up has a weighty query word this one lacks
    stranger: bool = False  # the question has a topic word no entry knows ("Spielplatz")
    topical: bool = True  # the question has a word naming its topic, not only role words and verbs
    town_fact: bool = False  # it asks a fact about one town this entry has no word for
    min_lead: float = MIN_LEAD  # the lead that tells it from the runner-up (``ABOUT_LEAD``)
    cue_elsewhere: bool = False  # the question asks "who", which another entry answers, not this
    long: bool = False  # the question has ``LONG_QUESTION`` words or more: its story around the topic
    learned: bool = False  # the examples' model names this entry with ``LEARNED`` (put first: ``PROMOTED``)
    doubted: bool = False  # the examples' model names another entry, or none, with ``DOUBTED``

    @property
    def confident(self) -> bool:
        """A word naming the topic is among the entry's own words, the question does not ask a
        fact about one town the entry has no word for ("Wie viele Einwohner hat Zwönitz?"),
        and: most of the question is covered and no other entry scores about the same (a
        question of role words only, "Was macht die Akademie?", needs a clear lead), or a good
        part is covered and the entry clearly leads, no other entry has a part of the question
        it lacks ("Wie viele Menschen leben in Mölln?") and the rest is not a topic of its own
        ("Fördermittel für einen Spielplatz"), or (English) a long question that tells its case
        around the topic is led clearly by the entry (``LONG_QUESTION``). Otherwise the bot
        offers choices: a wrong answer given with confidence is worse than two or three to
        choose from. Where these rules are not sure, the entry the examples' model names with a
        probability of ``LEARNED`` or more (``learned``) is answered directly too; where they
        are, but the model names another entry or none with ``DOUBTED`` (``doubted``), the bot
        offers choices."""
        if self.town_fact or self.cue_elsewhere or self.doubted:
            return False
        return self.learned or (
            self.strong
            and (
                (self.confidence >= CONFIDENT and self.lead >= (self.min_lead if self.topical else LEAD))
                or (
                    self.confidence >= CONFIDENT_LEADING
                    and self.lead >= LEAD
                    and not self.contested
                    and not self.stranger
                )
                or (
                    self.long
                    and self.confidence >= LONG_COVERED
                    and self.lead >= LONG_LEAD
                    and not self.contested
                )
            )
        )


@dataclass
class Classifier:
    """A multinomial naive Bayes model of which entry a question asks for, learned from
    labelled questions: the examples people asked (``faq/examples.<locale>.yaml``, the label
    ``None`` for those no entry answers) and the entries' own questions and phrasings.

    It sees a question as the search does (``features``): its words after synonyms, stop words
    and stemming, the index terms found for them (typos guessed, compounds split), and the
    pairs of neighbours of both, each counted once per question. It learns which words people
    use for an entry beyond the entry's own, and how sure that makes it. The candidates still
    come from BM25F: where the rules are unsure, the model confirms the best hit or puts the
    entry it is near-certain of first (``Hit.learned``); where they are sure, it may doubt the best hit
    (``Hit.doubted``). Training is counting, so it is built with the index."""

    language: Language
    log_prior: dict[str | None, float]
    log_unseen: dict[str | None, float]  # label → log P(a word it never had | label)
    # word → label → log P(word | label) - log P(unseen | label), for the labels that had the
    # word: a question's score starts from every known word being unseen, then adds these
    gain: dict[str, dict[str | None, float]]

    @classmethod
    def for_faq(
        cls, entries: Iterable[FaqEntry], examples: Iterable[tuple[str | None, str]], index: Index
    ) -> Classifier | None:
        """Trained on ``examples`` and the entries' own questions and phrasings."""
        own = [(e.id, text) for e in entries for text in (e.question, *e.alternatives)]
        return cls.train([*own, *examples], index)

    @classmethod
    def train(cls, examples: Iterable[tuple[str | None, str]], index: Index) -> Classifier | None:
        counts: dict[str | None, Counter[str]] = {}
        questions: Counter[str | None] = Counter()
        for label, text in examples:
            questions[label] += 1
            tokens = index.tokens(text)
            features = cls.features(index.language, tokens, index.query_terms(text, tokens))
            counts.setdefault(label, Counter()).update(features)
        if len(questions) < 2:
            return None
        size = len({word for found in counts.values() for word in found})
        total = sum(questions.values())
        log_prior = {label: math.log(n / total) for label, n in questions.items()}
        log_unseen = {
            label: math.log(LEARNED_SMOOTHING) - math.log(sum(found.values()) + LEARNED_SMOOTHING * size)
            for label, found in counts.items()
        }
        gain: dict[str, dict[str | None, float]] = {}
        for label, found in counts.items():
            for word, n in found.items():
                # log((n + a) / total') - log(a / total') for Laplace smoothing a
                gain.setdefault(word, {})[label] = math.log1p(n / LEARNED_SMOOTHING)
        return cls(index.language, log_prior, log_unseen, gain)

    @staticmethod
    def features(language: Language, tokens: Iterable[Word], terms: Iterable[QueryTerm]) -> set[str]:
        """What the model sees of a question, each once: its words as read (``Index.tokens``:
        stems, after synonyms and stop words) and each pair of neighbours, and the index terms
        the search found for them (typos guessed, compounds split: ``Index.query_terms``) and
        their pairs, and whether a word is unknown to every entry (``STRANGER``)."""
        stems = [language.stem(t.text) for t in tokens]
        terms = list(terms)
        found = [t.term for t in terms if t.factor > 0]
        return {
            *stems,
            *(f"{a} {b}" for a, b in pairwise(stems)),
            *(f"={t}" for t in found),
            *(f"={a} {b}" for a, b in pairwise(found)),
            *((STRANGER,) if any(t.factor == 0 for t in terms) else ()),
        }

    def classify(self, tokens: Iterable[Word], terms: Iterable[QueryTerm]) -> tuple[str | None, float]:
        """The most probable label for a question (its ``Index.tokens`` and the index terms
        found for them) and its probability."""
        # a word no example had tells no label from another
        known = [word for word in self.features(self.language, tokens, terms) if word in self.gain]
        scores = {
            label: prior + len(known) * self.log_unseen[label] for label, prior in self.log_prior.items()
        }
        for word in known:
            for label, gain in self.gain[word].items():
                scores[label] += gain
        best = max(scores, key=lambda label: scores[label])
        top = scores[best]
        return best, 1.0 / sum(math.exp(score - top) for score in scores.values())


@dataclass
class Index:
    weights: dict[str, float]
    language: Language = field(default_factory=lambda: plain_language("de"))
    docs: list[str] = field(default_factory=list)
    # term → (entry position, its weighted and length-normalised count over the fields, the
    # weight of the strongest field it is in), for BM25F
    postings: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    df: Counter[str] = field(default_factory=Counter)
    idfs: dict[str, float] = field(default_factory=dict)
    words: set[str] = field(default_factory=set)  # known words: the index's and the synonyms'
    known_stems: set[str] = field(default_factory=set)  # their stems
    phrasings: list[set[frozenset[str]]] = field(default_factory=list)  # terms of each question
    word_list: list[str] = field(default_factory=list)  # the same, sorted (deterministic typos)
    # (word length, cutoff) → the words of ``word_list`` long enough and short enough to reach
    # the cutoff (fuzz.ratio is at most 200 · shorter / (sum of lengths)), in the same order
    _typo_candidates: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    # words a cased (German) content writes in lower case only, never capitalised inside a
    # sentence: verbs and adjectives ("bietet", "möglich"). A query word whose case says nothing
    # (the first of a sentence, or a question typed in lower case) takes the content's case.
    lower_only: frozenset[str] = frozenset()
    # (term, entry position) → share of the entry's phrasings that carry the term (English only,
    # ``ABOUTNESS``)
    about: dict[tuple[str, int], float] = field(default_factory=dict)
    _seen: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # word → terms (build)
    classifier: Classifier | None = None  # learned from examples (the FAQ's, not the modules')

    # --- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, docs: list[Doc], weights: dict[str, float], language: Language | None = None) -> Index:
        index = cls(weights=dict(weights), language=language or plain_language("de"))
        lang = index.language
        texts = [{name: doc.fields.get(name, "") for name in weights} for doc in docs]
        # first the plain words, then again with separable verbs joined where the joined verb
        # is a word of the content ("Wie trage ich mich aus?" → "austragen")
        written = [w for fields in texts for text in fields.values() for w in lang.tokens(text)]
        index.words = {w.text for w in written}
        index.words |= set(lang.variants)
        capitalised = {w.text for w in written if not w.free and not w.lower}
        index.lower_only = frozenset(w.text for w in written if w.lower) - capitalised
        index.known_stems = {lang.stem(w) for w in index.words} | set(lang.variant_stems)
        raw = [{name: lang.words(text, index.known) for name, text in fields.items()} for fields in texts]
        index.phrasings = [
            {
                frozenset(lang.stem(w) for w in lang.words(line, index.known))
                for name in PHRASING_FIELDS
                for line in fields.get(name, "").split("\n")
                if line.strip()
            }
            for fields in texts
        ]
        if lang.aboutness:
            for position, entry_texts in enumerate(texts):
                lines = [
                    frozenset(lang.stem(w) for w in lang.words(line, index.known))
                    for name in PHRASING_FIELDS
                    for line in entry_texts.get(name, "").split("\n")
                    if line.strip()
                ]
                for term, n in Counter(t for line in lines for t in line).items():
                    index.about[(term, position)] = n / len(lines)
        # a phrasing of one word claims that word ("Was weiß der Bot über mich?" is "bot" once
        # its stop words are gone): not a word another entry's own question is about
        titles = [
            frozenset(
                lang.stem(w)
                for w in lang.words(fields.get("question") or fields.get("title", ""), index.known)
            )
            for fields in texts
        ]
        index.phrasings = [
            {
                terms
                for terms in phrasings
                if len(terms) > 1
                or terms == titles[position]
                or terms <= lang.role_stems
                or not any(terms <= title for other, title in enumerate(titles) if other != position)
            }
            for position, phrasings in enumerate(index.phrasings)
        ]
        totals: dict[str, float] = dict.fromkeys(weights, 0.0)
        tfs: list[dict[str, dict[str, float]]] = []  # entry → field → term → count
        lengths: list[dict[str, float]] = []
        for doc, fields in zip(docs, raw, strict=True):
            tf = {name: index._counts(ws) for name, ws in fields.items()}
            index.docs.append(doc.id)
            tfs.append(tf)
            lengths.append({name: sum(c.values()) for name, c in tf.items()})
            for name, counts in tf.items():
                totals[name] += sum(counts.values())
            index.df.update({t for counts in tf.values() for t in counts})
        count = max(1, len(docs))
        avg_length = {name: max(1.0, totals[name] / count) for name in weights}
        for position, tf in enumerate(tfs):
            for term in sorted({t for counts in tf.values() for t in counts}):
                pseudo, strongest = 0.0, 0.0
                for name, field_weight in index.weights.items():
                    found = tf[name].get(term, 0)
                    if found:
                        norm = 1 - B + B * lengths[position][name] / avg_length[name]
                        pseudo += field_weight * found / norm
                        strongest = max(strongest, field_weight)
                index.postings.setdefault(term, []).append((position, pseudo, strongest))
        index.idfs = {term: index.idf(term) for term in index.df}
        index.word_list = sorted(w for w in index.words if len(w) >= 4)
        index._seen.clear()  # needed while building only
        return index

    def _light(self, token: Word) -> bool:
        """A word that rarely names the topic: a verb or adjective (written in lower case, or
        one the content writes so when its case says nothing), a figure, a frequent English verb."""
        w = token.text
        return token.lower or (token.free and w in self.lower_only) or w.isdigit() or self.language.light(w)

    def _other_compound(self, word: str, guess: str) -> bool:
        """``word`` and its close ``guess`` start with the same known word and end differently:
        another compound, not a typo ("Bürgeramt" is not "Bürgerrat")."""
        from rapidfuzz import fuzz

        for cut in range(len(word) - 3, 3, -1):
            if word[:cut] == guess[:cut] and word[:cut] in self.words and len(guess) - cut >= 3:
                return fuzz.ratio(word[cut:], guess[cut:]) < 70
        return False

    def _candidates(self, length: int, cutoff: int) -> list[str]:
        """The words a typo of ``length`` letters can be of: the others cannot reach ``cutoff``,
        so leaving them out changes no guess and makes the look-up about twice as fast."""
        key = (length, cutoff)
        if key not in self._typo_candidates:
            self._typo_candidates[key] = [
                w for w in self.word_list if 200 * min(length, len(w)) >= cutoff * (length + len(w))
            ]
        return self._typo_candidates[key]

    def _own_word(self, term: str, doc_id: str) -> bool:
        """``term`` is in the entry's question, phrasings or tags (not only in its answer)."""
        position = self.docs.index(doc_id)
        return any(
            pos == position and field >= STRONG_FIELD for pos, _p, field in self.postings.get(term, ())
        )

    def known(self, word: str) -> bool:
        return word in self.words or self.language.stem(word) in self.known_stems

    def _stems(self, word: str) -> list[str]:
        """The terms of a known word (a synonym counts as the content's word)."""
        return [self.language.stem(w) for w in self.language.resolve(word)]

    def _split(self, word: str, loose: bool = False) -> list[str]:
        """Two known words a compound is made of, or [] ("tandempartner" → tandem, partner).

        ``loose`` (used for index words) also accepts an unknown head before a known tail of at
        least five letters, so "Jugendparlament" makes "jugend" findable. The head may end in a
        linking s, n, en, or be a verb without its n ("Anmeldefrist" → anmelden, frist). Both
        parts must be words of the index as they stand: splitting against stems made
        off-topic compounds ("Wohnsitz", "Haushaltsplan") look known."""
        if len(word) < 8:
            return []
        for cut in range(len(word) - 4, 3, -1):
            head, tail = word[:cut], word[cut:]
            if tail not in self.words:
                continue
            for candidate in (
                head,
                head[:-1] if head.endswith("s") else None,
                head[:-1] if head.endswith("n") else None,
                head[:-2] if head.endswith("en") else None,
                head + "n" if head.endswith("e") else None,
            ):
                if candidate and len(candidate) >= 4 and candidate in self.words:
                    return [candidate, tail]
            if loose and len(tail) >= 5:
                return [head.removesuffix("s") if len(head) > 4 else head, tail]
        return []

    def _counts(self, ws: list[str]) -> dict[str, float]:
        """Term counts of a field: each word once, each part of a compound a little less."""
        counts: dict[str, float] = {}
        for w in ws:
            if w not in self._seen:
                self._seen[w] = [(self.language.stem(w), 1.0)] + [
                    (t, COMPOUND_PART) for part in self._split(w, loose=True) for t in self._stems(part)
                ]
            for term, count in self._seen[w]:
                counts[term] = counts.get(term, 0.0) + count
        return counts

    # --- searching ------------------------------------------------------------------------

    def idf(self, term: str) -> float:
        value = self.idfs.get(term)
        if value is None:
            n, df = len(self.docs), self.df.get(term, 0)
            value = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return value

    def query_terms(self, text: str, tokens: list[Word] | None = None) -> list[QueryTerm]:
        """The query's words as index terms, each with its share of the query weight
        (``tokens``: the words of ``text``, if the caller has them already)."""
        result: dict[str, QueryTerm] = {}
        unknown_idf = self.idf("\0")  # a word no entry has: the highest weight

        def add(term: QueryTerm) -> None:
            if term.term not in result or result[term.term].covers < term.covers:
                result[term.term] = term

        if tokens is None:
            tokens = self.tokens(text)
        unique = {t.text: t for t in reversed(tokens)}
        by_content_case: list[str] = []  # known words light only by the content's case
        for w, token in reversed(unique.items()):
            term = self.language.stem(w)
            if term in self.df:
                # question words ("wann") and verbs ("bietet") say less about the topic than nouns
                if w in self.language.cue_words:
                    share = CUE
                elif term in self.language.role_stems:
                    share = ROLE
                else:
                    # a figure ("3.000 Einwohner") is rarely what the question is about
                    light = self._light(token)
                    share = LOWER_KNOWN if light else 1.0
                    if light and not token.lower and token.free and w in self.lower_only and not w.isdigit():
                        by_content_case.append(term)
                add(QueryTerm(term, share, share * self.idf(term), share * self.idf(term)))
                continue
            if w in self.language.cue_words or term in self.language.role_stems:
                continue  # a question word ("wem") or who asks ("Kämmerin"): no entry uses it
            parts = [t for p in self._split(w) for t in self._stems(p) if t in self.df]
            if parts:
                for p in parts:
                    add(QueryTerm(p, 1.0, self.idf(p), self.idf(p)))
                continue
            if w.isdigit() and not self.language.unknown_figure:
                continue  # an English figure no entry has ("We have 30,000 inhabitants")
            # a verb in a cased German text or a figure ("12.000 Einwohner") is rarely the topic
            light = token.lower or token.opens or w.isdigit() or self.language.light(w)
            if token.lower or token.opens or w.isdigit():
                unknown = unknown_idf * (LOWER_UNKNOWN if light else 1.0)
            else:  # a frequent verb by the language's list (English)
                unknown = unknown_idf * (self.language.unknown_light if light else 1.0)
            cutoff = FUZZY_CUTOFF if len(w) >= 8 else FUZZY_CUTOFF_SHORT
            from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

            close = (
                process.extractOne(
                    w, self._candidates(len(w), cutoff), scorer=fuzz.ratio, score_cutoff=cutoff
                )
                if len(w) >= 6
                else None
            )
            if close is not None and self._other_compound(w, close[0]):
                close = None  # "Bürgeramt" is not a typo of "Bürgerrat"
            guesses = [t for t in self._stems(close[0]) if t in self.df] if close is not None else []
            if close is not None and guesses:
                # a guessed word counts by how close it is, and as little as the word itself
                # (a verb stays a verb); a loose guess (below 90) also keeps the weight of an
                # unknown word, so it alone never makes a confident answer
                factor = close[1] / 100 * (LOWER_KNOWN if light else 1.0)
                for found in guesses:
                    weight = self.idf(found) if close[1] >= FUZZY_SURE else unknown
                    add(QueryTerm(found, factor, weight, factor * self.idf(found)))
            else:
                add(QueryTerm(term, 0.0, unknown, 0.0))
        if by_content_case and not any(t.factor >= TOPIC_FACTOR for t in result.values()):
            # no noun in the question: the verb is its topic ("Was wird über mich gespeichert?")
            for term in by_content_case:
                idf = self.idf(term)
                result[term] = QueryTerm(term, 1.0, idf, idf)
        return list(result.values())

    def tokens(self, text: str) -> list[Word]:
        """The words of ``text`` as the search reads them (separable verbs joined where the
        joined verb is known)."""
        return self.language.tokens(text, self.known)

    def _judged(self, hits: list[Hit], terms: list[QueryTerm], total: float, topic_factor: float) -> Hit:
        """The best hit with what decides whether it is answered directly: its lead over the
        runner-up, whether the runner-up contests it, and the vetoes (a "who" another entry
        answers, a town fact it has no word for, a word no entry knows)."""
        lead = hits[0].score / hits[1].score if len(hits) > 1 else math.inf
        best = set(hits[0].matched)
        other = set(hits[1].matched) - best if len(hits) > 1 else set()
        contested = (
            sum(t.weight for t in terms if t.term in other and t.factor >= TOPIC_FACTOR) >= CONTESTED * total
        )
        # "who" in an entry's own words, not in an example of its answer ("Who can take
        # part?" in the answer on using the bot does not answer "Who can I ask?")
        cue_elsewhere = any(
            t.term in self.language.deciding_cues
            and not self._own_word(t.term, hits[0].id)
            and any(self._own_word(t.term, h.id) for h in hits[1:3])
            for t in terms
        )
        # a fact about one town ("Wie viele Einwohner hat Zwönitz?") only from an entry
        # that has the word asking for it among its own words (TOWN_FACT_WORDS)
        town_fact = any(
            not self._own_word(t.term, hits[0].id)
            for t in terms
            if t.term in self.language.town_fact_stems
            or (t.term in self.language.town_fact_who_stems and any(q.term == "who" for q in terms))
        )
        # a noun (or any English word) no entry has, not a verb, a figure or a typo's guess
        stranger = any(t.factor == 0.0 and t.weight >= self.idf("\0") for t in terms)
        return replace(
            hits[0],
            lead=lead,
            contested=contested,
            stranger=stranger,
            topical=topic_factor > 0,
            town_fact=town_fact,
            min_lead=self.language.min_lead,
            cue_elsewhere=cue_elsewhere,
            long=0 < self.language.long_question <= len(terms),
        )

    def search(self, text: str, limit: int = 5) -> list[Hit]:
        tokens = self.tokens(text)
        terms = self.query_terms(text, tokens)
        total = sum(t.weight for t in terms)
        if not terms or total <= 0:
            return []
        hits: list[Hit] = []
        # the words that name the topic must be among those found in the question, phrasings or
        # tags; a question of role words and verbs only ("Was ist die Kleinstadtakademie?")
        # is about those
        topic_factor = TOPIC_FACTOR if any(t.factor >= TOPIC_FACTOR for t in terms) else 0.0
        known = [t for t in terms if t.factor > 0]
        exact = frozenset(t.term for t in known) if len(known) == len(terms) else None
        scores: dict[int, float] = {}
        covered: dict[int, float] = {}
        matched: dict[int, list[str]] = {}
        strong: set[int] = set()
        about = self.about
        aboutness = self.language.aboutness
        for t in known:
            idf = self.idf(t.term)
            for position, pseudo, strongest in self.postings.get(t.term, ()):
                gain = t.factor * idf * pseudo * (K1 + 1) / (pseudo + K1)
                if about and t.factor >= TOPIC_FACTOR:  # a word naming the topic, not a verb or figure
                    gain *= 1.0 + aboutness * about.get((t.term, position), 0.0)
                scores[position] = scores.get(position, 0.0) + gain
                covered[position] = covered.get(position, 0.0) + t.covers * (
                    1.0 if strongest >= STRONG_FIELD else ANSWER_ONLY
                )
                if strongest >= STRONG_FIELD and t.factor >= topic_factor:
                    strong.add(position)
                matched.setdefault(position, []).append(t.term)
        weight_of = {t.term: t.weight for t in known}
        known_weight = sum(weight_of.values())
        ranked: list[tuple[float, int]] = []
        for position, score in scores.items():
            if score <= 0:
                continue
            # asked in the very words of one of its phrasings
            score_bonus = PHRASING_BONUS if exact is not None and exact in self.phrasings[position] else 1.0
            ranked.append((round(score * score_bonus, 6), position))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        # only the hits returned, and the two after the best that the "who" cue looks at
        for score, position in ranked[: max(limit, 3)]:
            # a known word of the question the entry lacks counts against it
            missing = known_weight - sum(weight_of[term] for term in matched[position])
            hits.append(
                Hit(
                    self.docs[position],
                    score,
                    round(min(1.0, covered[position] / (total + (MISSING_KNOWN - 1) * missing)), 4),
                    tuple(matched[position]),
                    strong=position in strong,
                )
            )
        if hits:
            hits[0] = self._judged(hits, terms, total, topic_factor)
            if self.classifier is not None:
                label, probability = self.classifier.classify(tokens, terms)
                if hits[0].confident:
                    if label != hits[0].id and probability >= DOUBTED:
                        hits[0] = replace(hits[0], doubted=True)
                elif label == hits[0].id and probability >= LEARNED:
                    hits[0] = replace(hits[0], learned=True)
                elif probability >= PROMOTED and label is not None and label in self.docs:
                    # the rules are unsure and the model names another entry: it goes first
                    at = next((n for n, hit in enumerate(hits) if hit.id == label), None)
                    hits.insert(0, hits.pop(at) if at is not None else Hit(label, 0.0, 0.0))
                    hits[0] = replace(self._judged(hits, terms, total, topic_factor), learned=True)
        return hits[:limit]


# Field weights: question and alternative phrasings count most, the answer least.
FAQ_WEIGHTS = {"question": 3.0, "alternatives": 2.5, "tags": 2.0, "answer": 0.5}
MODULE_WEIGHTS = {"title": 3.0, "id": 2.5, "format": 2.0, "topics": 1.5, "summary": 1.0, "body": 0.5}


def faq_docs(entries: Iterable[FaqEntry]) -> list[Doc]:
    return [
        Doc(
            e.id,
            {
                "question": e.question,
                "alternatives": "\n".join(e.alternatives),
                "tags": " ".join(e.tags),
                "answer": CODE_SPAN.sub(" ", e.answer),  # `!befehle` are not what it is about
            },
        )
        for e in entries
    ]


def module_docs(modules: Iterable[Module], topic_label: Callable[[str], str]) -> list[Doc]:
    return [
        Doc(
            m.id,
            {
                "title": m.title,
                "id": m.id.replace("-", " ").replace("_", " "),
                "format": m.format,
                "topics": " ".join(topic_label(t) for t in m.topics),
                "summary": m.summary,
                "body": m.body,
            },
        )
        for m in modules
    ]


# --- the loaded library: content plus its indexes ------------------------------------------

CACHE_KEY = "content.library"


@dataclass
class Library:
    """The content in service and its search indexes (kept in ``services.cache``).

    An index is built on first use of its locale (``prepare`` builds them ahead, off the event
    loop), so a German bot never builds the English index or loads the English stemmer."""

    content: Content
    problems: list[Problem]
    _faq_index: dict[str, Index] = field(default_factory=dict)
    _module_index: dict[str, Index] = field(default_factory=dict)
    _languages: dict[str, Language] = field(default_factory=dict)

    @classmethod
    def build(cls, content: Content, problems: list[Problem], locales: Iterable[str] = ()) -> Library:
        return cls(content, problems).prepare(*locales)

    def prepare(self, *locales: str) -> Library:
        """Build the indexes of ``locales`` now (the bot does this in a thread at start)."""
        for locale in locales:
            self.faq_index(locale)
            self.module_index(locale)
        return self

    def language(self, locale: str) -> Language:
        if locale not in self._languages:
            self._languages[locale] = Language(locale, self.content.synonyms.get(locale))
        return self._languages[locale]

    # --- FAQ ------------------------------------------------------------------------------

    def faq_locale(self, locale: str) -> str:
        """The locale whose FAQ serves ``locale`` (German if it has none)."""
        return locale if self.content.faq.get(locale) else "de"

    def faq(self, locale: str) -> list[FaqEntry]:
        return self.content.faq_for(locale)

    def faq_entry(self, locale: str, entry_id: str) -> FaqEntry | None:
        return next((e for e in self.faq(locale) if e.id == entry_id), None)

    def faq_index(self, locale: str) -> Index | None:
        key = self.faq_locale(locale)
        if key not in self._faq_index:
            entries = self.content.faq.get(key)
            if not entries:
                return None
            index = Index.build(faq_docs(entries), FAQ_WEIGHTS, self.language(key))
            examples = self.content.examples_for(key)
            if examples:
                index.classifier = Classifier.for_faq(entries, examples, index)
            self._faq_index[key] = index
        return self._faq_index[key]

    def ask(self, locale: str, question: str, limit: int = 3) -> list[tuple[FaqEntry, Hit]]:
        """The best FAQ entries for ``question``, best first, with their confidence."""
        index = self.faq_index(locale)
        if index is None:
            return []
        entries = {e.id: e for e in self.faq(locale)}
        return [(entries[h.id], h) for h in index.search(question, limit) if h.id in entries]

    # --- modules --------------------------------------------------------------------------

    def modules(self, locale: str) -> list[Module]:
        return self.content.modules_for(locale)

    def module(self, locale: str, module_id: str) -> Module | None:
        key = fold(module_id).replace(" ", "-")
        return next((m for m in self.modules(locale) if m.id == key), None)

    def module_index(self, locale: str) -> Index | None:
        key = locale if self.content.modules.get(locale) else "de"
        if key not in self._module_index:
            modules = self.content.modules.get(key)
            if not modules:
                return None
            topics = default_topics()

            def label(topic_id: str) -> str:
                topic = topics.by_id.get(topic_id)
                return " ".join(topic.name.values()) + " " + " ".join(topic.aliases) if topic else topic_id

            self._module_index[key] = Index.build(
                module_docs(modules, label), MODULE_WEIGHTS, plain_language(key)
            )
        return self._module_index[key]

    def find_modules(self, locale: str, text: str, limit: int = 5) -> list[tuple[Module, Hit]]:
        index = self.module_index(locale)
        if index is None:
            return []
        modules = {m.id: m for m in self.modules(locale)}
        return [(modules[h.id], h) for h in index.search(text, limit) if h.id in modules]


def load_library(root: Path | None = None, locales: Iterable[str] = ()) -> Library:
    """Read, check and index the content below ``root`` (the valid part, plus the problems).
    With ``locales`` (a bot's own), only their FAQ examples are read now, the others on first
    use; without, everything is read and checked (the content check, ``!reload``)."""
    locales = tuple(locales)
    content, problems = load_content(root, example_locales=locales or None)
    return Library.build(content, problems, locales)


def content_root(settings: Any) -> Path:
    return Path(settings.content_dir) if settings.content_dir else CONTENT_DIR


async def library(services: Services) -> Library:
    """The library in service, loaded (with the bot's locale indexed) on first use."""

    async def build() -> Library:
        return await asyncio.to_thread(
            load_library, content_root(services.settings), (services.settings.locale,)
        )

    lib: Library = await services.cached(CACHE_KEY, build)
    return lib
