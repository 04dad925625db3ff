"""Operator-editable content: FAQ answers and the module library, loaded and validated.

Layout under ``config/content/`` (or the ``content_dir`` setting):

- ``faq/<locale>.yaml``: ``faq:`` a list of entries (id, question, alternatives, answer, tags,
  optional category and source).
- ``faq/synonyms.<locale>.yaml``: ``synonyms:`` the words and phrases people use for the FAQ's
  own words, for the FAQ search.
- ``faq/examples.<locale>.yaml``: ``examples:`` questions people asked, each as ``[entry id,
  question]`` (``null`` for a question no entry answers), from which the FAQ search learns.
- ``modules/*.md``: one German module per file, YAML front matter between ``---`` lines (id,
  title, format, topics, summary, source; duration and audience, or ``unknown`` naming those the
  sources do not give; optional ``notes`` for authors), then the body in ``## `` sections.
  ``modules/<locale>/*.md`` are that locale's versions, with the same ids, topics and figures;
  a module not yet translated is shown in German.
- ``topics/<locale>.yaml`` (shipped with the package): the topic list, read by
  ``load_topic_files``.

Notes meant for authors never reach users: they belong in ``notes:``, which nothing renders, and
the check flags phrases of author notes ("[?]", "in den Quellen …") in text that users read.

``load_content`` never raises for bad content: it returns what is valid plus one ``Problem``
per mistake, each with the file and line so an author can find it (``file:line: message``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config.catalogs import locales
from config.topics import REFERENCE_LOCALE, TOPICS_DIR, Topic, TopicList

CONTENT_DIR = Path(__file__).resolve().parent / "content"
LOCALES = locales()  # German and every locale with a message catalog: a new locale is new files
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,59}$")

FAQ_FIELDS = {"id", "question", "alternatives", "answer", "tags", "category", "source", "notes"}
FAQ_REQUIRED = ("id", "question", "answer", "source")
MODULE_FIELDS = {
    "id",
    "title",
    "format",
    "topics",
    "duration",
    "audience",
    "summary",
    "source",
    "unknown",
    "notes",
}
MODULE_REQUIRED = ("id", "title", "format", "topics", "summary", "source")
MODULE_FACTS = ("duration", "audience")  # each given from the sources, or listed under 'unknown'
TOPIC_FIELDS = {"id", "name", "description", "aliases", "notes"}
TOPIC_REQUIRED = ("id", "name", "description")

# Phrases of notes meant for content authors ("[?]" is the research notes' mark of an uncertain
# fact). Users read what they write, so the check flags them anywhere but under 'notes:'.
AUTHOR_NOTE = re.compile(
    r"\[\?\]|\(\?\)|\b(?:TODO|FIXME|TBD)\b|facts\.md|\bin den Quellen\b|\bnicht belegt\b"
    r"|\bunbelegt\b|\bin the sources\b",
    re.IGNORECASE,
)
# A source line names sources; a negation or a doubt in it is an editorial remark.
SOURCE_REMARK = re.compile(
    r"\b(?:nicht|kein|keine|keinen|unklar|unsicher|vermutlich|not|no|unclear|uncertain|probably)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class FaqEntry:
    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    category: str = ""
    source: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    body: str


@dataclass(frozen=True)
class Module:
    """One module in one locale. ``duration`` and ``audience`` are empty when the sources do not
    give them (``unknown`` names which); ``notes`` are for authors and never rendered."""

    id: str
    title: str
    format: str
    topics: tuple[str, ...]
    summary: str
    sections: tuple[Section, ...]
    source: str
    duration: str = ""
    audience: str = ""
    unknown: tuple[str, ...] = ()
    notes: str = ""
    file: str = ""

    @property
    def body(self) -> str:
        return "\n\n".join(f"## {s.title}\n\n{s.body}" for s in self.sections)

    @property
    def first_section(self) -> Section | None:
        return self.sections[0] if self.sections else None


@dataclass
class Content:
    """Everything loaded: FAQ entries and modules per locale."""

    faq: dict[str, list[FaqEntry]] = field(default_factory=dict)
    modules: dict[str, list[Module]] = field(default_factory=dict)
    # FAQ search: the content's word → the words and phrases people use for it, per locale
    synonyms: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # FAQ search: questions people asked, labelled with the entry that answers them (or None)
    faq_examples: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)
    # the example files not read yet (``load_content``'s ``example_locales``): read on first use
    example_files: dict[str, Path] = field(default_factory=dict)

    def examples_for(self, locale: str) -> list[tuple[str | None, str]]:
        """The locale's FAQ examples, read now if they were left for later (their problems
        are the content check's: what is not a valid example is skipped)."""
        path = self.example_files.pop(locale, None)  # read once, whoever asks first
        if path is not None and locale not in self.faq_examples:
            self.faq_examples[locale] = load_example_file(path, path.parent.parent)[0]
        return self.faq_examples.get(locale, [])

    def faq_for(self, locale: str) -> list[FaqEntry]:
        return self.faq.get(locale) or self.faq.get("de") or []

    def modules_for(self, locale: str) -> list[Module]:
        """The locale's modules in the German order; a module not yet translated in German."""
        reference = self.modules.get(REFERENCE_LOCALE) or []
        own = {m.id: m for m in self.modules.get(locale) or []}
        if locale == REFERENCE_LOCALE or not own:
            return self.modules.get(locale) or reference
        known = {m.id for m in reference}
        return [own.get(m.id, m) for m in reference] + [m for m in own.values() if m.id not in known]


# --- YAML with line numbers -----------------------------------------------------------------


class _Located(dict):
    """A YAML mapping that remembers where it and each of its keys start (1-based lines)."""

    line: int = 1
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Located:
    loader.flatten_mapping(node)
    mapping = _Located()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[str(key)] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass


def _yaml_error(exc: Exception, offset: int = 0) -> tuple[int, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = (mark.line + 1 if mark is not None else 1) + offset
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return line, f"not valid YAML: {problem}"


# --- Markdown checks ------------------------------------------------------------------------

_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")
_LINK_START = re.compile(r"\]\(")


def markdown_problems(text: str) -> list[tuple[int, str]]:
    """Mistakes in operator Markdown that would show up garbled: (line offset from 0, message).

    Inline marks (``**``, backticks, link brackets) may span lines, so they are counted per
    paragraph and reported at the paragraph's first line.
    """
    found: list[tuple[int, str]] = []
    fence_line: int | None = None
    paragraph: list[str] = []
    start = 0

    def check_paragraph() -> None:
        if not paragraph:
            return
        block = "\n".join(paragraph)
        code_free = re.sub(r"`[^`]*`", "", block)
        if code_free.count("`") % 2:
            found.append((start, "inline code not closed: a ` is missing"))
        for match in _LINK_START.finditer(code_free):
            if ")" not in code_free[match.end() :]:
                found.append((start, "link not closed: ')' missing after ']('"))
        if code_free.count("[") != code_free.count("]"):
            found.append((start, "square brackets do not match: check the link [text](address)"))
        if code_free.count("**") % 2:
            found.append((start, "bold text not closed: a ** is missing"))

    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            check_paragraph()
            paragraph = []
            fence_line = number if fence_line is None else None
            continue
        if fence_line is not None:
            continue
        if _HTML_TAG.search(re.sub(r"`[^`]*`", "", line)):
            found.append((number, "raw HTML is not allowed (it is shown as text); use Markdown"))
        if not stripped or stripped.startswith("#") or re.match(r"^([-*+]|\d+\.)\s", stripped):
            check_paragraph()
            blank = not stripped or stripped.startswith("#")
            paragraph, start = ([], number + 1) if blank else ([line], number)
            continue
        if not paragraph:
            start = number
        paragraph.append(line)
    check_paragraph()
    if fence_line is not None:
        found.append((fence_line, "code block opened with ``` but never closed"))
    return sorted(found)


# --- notes for authors and source lines ---------------------------------------------------


def note_problems(file: str, line: int, what: str, text: str) -> list[Problem]:
    """Author notes in text users read (one problem per line of ``text`` that has one)."""
    found = []
    for offset, row in enumerate(text.split("\n")):
        match = AUTHOR_NOTE.search(row)
        if match:
            found.append(
                Problem(
                    file,
                    line + offset,
                    f"{what}: '{match.group(0)}' reads like a note for authors, but users would see "
                    "it; put it under 'notes:' (never shown)",
                )
            )
    return found


def source_problems(file: str, line: int, source: Any) -> list[Problem]:
    """A source line must be a text that names sources, without remarks."""
    if not isinstance(source, str):
        return [Problem(file, line, "'source' must be a text")]
    match = AUTHOR_NOTE.search(source) or SOURCE_REMARK.search(source)
    if match:
        return [
            Problem(
                file,
                line,
                f"source: '{match.group(0)}' reads like a remark; name only the sources here and put "
                "remarks under 'notes:'",
            )
        ]
    return []


# --- FAQ ------------------------------------------------------------------------------------


def _unknown_fields(
    file: str, fields: Iterable[Any], known: set[str], at: Callable[[str], int]
) -> list[Problem]:
    """Fields a FAQ entry or module does not have (typos such as ``tittle``)."""
    return [
        Problem(file, at(str(key)), f"unknown field '{key}' (known: {', '.join(sorted(known))})")
        for key in fields
        if key not in known
    ]


def _id_problems(file: str, value: str, at: Callable[[str], int]) -> list[Problem]:
    if value and not ID_RE.match(value):
        return [
            Problem(
                file,
                at("id"),
                f"id '{value}': use lower-case letters, digits, '-' or '_' (2 to 60 characters)",
            )
        ]
    return []


def _text_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    return None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def load_faq_file(path: Path, root: Path) -> tuple[list[FaqEntry], list[Problem]]:
    name = _rel(path, root)
    problems: list[Problem] = []
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return [], [Problem(name, 1, "file is not UTF-8 text")]
    except yaml.YAMLError as exc:
        line, message = _yaml_error(exc)
        return [], [Problem(name, line, message)]
    if not isinstance(data, dict) or not isinstance(data.get("faq"), list):
        return [], [Problem(name, 1, "expected a list of entries under 'faq:'")]
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["faq"], start=1):
        if not isinstance(raw, _Located):
            problems.append(
                Problem(
                    name,
                    getattr(data, "key_lines", {}).get("faq", 1),
                    f"entry {index} is not a mapping of fields",
                )
            )
            continue

        def at(key: str, raw: _Located = raw) -> int:
            return raw.key_lines.get(key, raw.line)

        before = len(problems)
        problems += _unknown_fields(name, raw, FAQ_FIELDS, at)
        for key in FAQ_REQUIRED:
            value = raw.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(Problem(name, at(key), f"entry {index}: '{key}' is missing or empty"))
        entry_id = str(raw.get("id") or "").strip()
        problems += _id_problems(name, entry_id, at)
        if entry_id in seen:
            problems.append(
                Problem(name, at("id"), f"duplicate id '{entry_id}' (first at line {seen[entry_id]})")
            )
        elif entry_id:
            seen[entry_id] = at("id")
        lists = {}
        for key in ("alternatives", "tags"):
            values = _text_list(raw.get(key))
            if values is None:
                problems.append(Problem(name, at(key), f"'{key}' must be a list of texts"))
                values = []
            lists[key] = tuple(v.strip() for v in values if v.strip())
        for key in ("category", "notes"):
            if raw.get(key) is not None and not isinstance(raw.get(key), str):
                problems.append(Problem(name, at(key), f"'{key}' must be a text"))
        if isinstance(raw.get("source"), str) and raw["source"].strip():
            problems += source_problems(name, at("source"), raw["source"])
        if isinstance(raw.get("question"), str):
            problems += note_problems(name, at("question"), f"question of '{entry_id}'", raw["question"])
        answer = raw.get("answer")
        if isinstance(answer, str):
            # block scalars (answer: |) start one line below the key
            offset = at("answer") + (1 if "\n" in answer.strip() or answer.endswith("\n") else 0)
            for line, message in markdown_problems(answer):
                problems.append(Problem(name, offset + line, f"answer of '{entry_id}': {message}"))
            problems += note_problems(name, offset, f"answer of '{entry_id}'", answer)
        if len(problems) > before or not isinstance(answer, str):
            continue
        entries.append(
            FaqEntry(
                id=entry_id,
                question=str(raw["question"]).strip(),
                answer=answer.strip(),
                alternatives=lists["alternatives"],
                tags=lists["tags"],
                category=str(raw.get("category") or "").strip(),
                source=str(raw.get("source") or "").strip(),
            )
        )
    return entries, problems


# --- FAQ synonyms ---------------------------------------------------------------------------

SYNONYMS_PREFIX = "synonyms."  # faq/synonyms.<locale>.yaml


def load_synonym_file(path: Path, root: Path) -> tuple[dict[str, tuple[str, ...]], list[Problem]]:
    """``synonyms:`` a mapping from a word the FAQ uses to the words and phrases people use for
    it (``kosten: [Gebühr, Teilnahmebeitrag]``). A word or phrase belongs to one entry only."""
    name = _rel(path, root)
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return {}, [Problem(name, 1, "file is not UTF-8 text")]
    except yaml.YAMLError as exc:
        line, message = _yaml_error(exc)
        return {}, [Problem(name, line, message)]
    if not isinstance(data, _Located) or not isinstance(data.get("synonyms"), _Located):
        return {}, [Problem(name, 1, "expected 'synonyms:' with one 'word: [other words]' per line")]
    table: _Located = data["synonyms"]
    synonyms: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    first: dict[str, tuple[str, int]] = {}
    for key, value in table.items():
        line = table.key_lines.get(str(key), table.line)
        variants = _text_list(value)
        if not str(key).strip() or not variants:
            problems.append(Problem(name, line, f"'{key}': give a word and a list of other words for it"))
            continue
        kept = []
        for variant in variants:
            folded = " ".join(variant.lower().split())
            if folded in first and first[folded][0] != str(key):
                problems.append(
                    Problem(
                        name,
                        line,
                        f"'{variant}' is listed for '{key}' and for '{first[folded][0]}' (line "
                        f"{first[folded][1]}); a word can stand for one thing only",
                    )
                )
                continue
            first.setdefault(folded, (str(key), line))
            kept.append(variant.strip())
        synonyms[str(key).strip()] = tuple(kept)
    return synonyms, problems


# --- FAQ examples ---------------------------------------------------------------------------

EXAMPLES_PREFIX = "examples."  # faq/examples.<locale>.yaml
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # PyYAML's wheels carry libyaml


def load_example_file(path: Path, root: Path) -> tuple[list[tuple[str | None, str]], list[Problem]]:
    """``examples:`` a list of ``[entry id, question]`` pairs, ``null`` as the id of a question
    no entry answers. Whether the ids name entries is checked once the FAQ is loaded."""
    name = _rel(path, root)
    try:
        # libyaml's parser: a thousand examples take it 30 ms of CPU, the line-numbering one 300
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=FAST_LOADER)
    except UnicodeDecodeError:
        return [], [Problem(name, 1, "file is not UTF-8 text")]
    except yaml.YAMLError as exc:
        line, message = _yaml_error(exc)
        return [], [Problem(name, line, message)]
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        return [], [Problem(name, 1, "expected 'examples:' with one '- [entry-id, \"question\"]' per line")]
    examples: list[tuple[str | None, str]] = []
    problems: list[Problem] = []
    for number, item in enumerate(data["examples"], start=1):
        valid = (
            isinstance(item, list)
            and len(item) == 2
            and (item[0] is None or isinstance(item[0], str))
            and isinstance(item[1], str)
            and item[1].strip()
        )
        if not valid:  # the loader keeps no lines: a problem names the example by its number
            message = f'example {number}: write it as [entry-id, "question"] or [null, "question"]'
            problems.append(Problem(name, 1, message))
            continue
        examples.append((item[0], item[1].strip()))
    return examples, problems


def _example_problems(content: Content, root: Path) -> list[Problem]:
    problems = []
    for locale, examples in content.faq_examples.items():
        ids = {e.id for e in content.faq.get(locale, [])}
        name = _rel(root / "faq" / f"{EXAMPLES_PREFIX}{locale}.yaml", root)
        for number, (entry_id, _text) in enumerate(examples, start=1):
            if entry_id is not None and entry_id not in ids:
                message = f"example {number}: no FAQ entry '{entry_id}' in faq/{locale}.yaml"
                problems.append(Problem(name, 1, message))
    return problems


# --- modules --------------------------------------------------------------------------------

_SECTION = re.compile(r"^##\s+(.+?)\s*#*\s*$")


def _split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(front matter, body, line where the body starts) or None if there is no front matter."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for number in range(1, len(lines)):
        if lines[number].strip() == "---":
            return "\n".join(lines[1:number]), "\n".join(lines[number + 1 :]), number + 2
    return None


def _sections(body: str, first_line: int, name: str, problems: list[Problem]) -> list[Section]:
    sections: list[Section] = []
    title: str | None = None
    lines: list[str] = []
    for number, line in enumerate(body.split("\n")):
        match = _SECTION.match(line)
        if match:
            if title is not None:
                sections.append(Section(title, "\n".join(lines).strip()))
            title, lines = match.group(1), []
            continue
        if title is None:
            if line.strip():
                problems.append(
                    Problem(
                        name,
                        first_line + number,
                        "text before the first section: start sections with '## Title'",
                    )
                )
                title = ""
            continue
        lines.append(line)
    if title is not None:
        sections.append(Section(title, "\n".join(lines).strip()))
    for section in sections:
        if not section.body:
            problems.append(Problem(name, first_line, f"section '{section.title}' is empty"))
    return [s for s in sections if s.title]


def load_module_file(path: Path, root: Path, topics: TopicList) -> tuple[Module | None, list[Problem]]:
    name = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [Problem(name, 1, "file is not UTF-8 text")]
    split = _split_front_matter(text.replace("\r\n", "\n"))
    if split is None:
        return None, [
            Problem(name, 1, "front matter missing: start the file with '---', the fields, and '---' again")
        ]
    head, body, body_line = split
    try:
        meta = _yaml(head)
    except yaml.YAMLError as exc:
        line, message = _yaml_error(exc, offset=1)
        return None, [Problem(name, line, message)]
    if not isinstance(meta, _Located):
        return None, [Problem(name, 1, "front matter must be fields such as 'id: lernwerkstatt'")]
    problems: list[Problem] = []

    def at(key: str) -> int:
        return meta.key_lines.get(key, 1) + 1  # +1: the opening '---'

    problems += _unknown_fields(name, meta, MODULE_FIELDS, at)
    for key in MODULE_REQUIRED:
        value = meta.get(key)
        if key == "topics":
            continue
        if not isinstance(value, str | int) or not str(value).strip():
            where = at(key) if key in meta.key_lines else 1
            problems.append(Problem(name, where, f"'{key}' is missing or empty"))
    module_id = str(meta.get("id") or "").strip()
    problems += _id_problems(name, module_id, at)
    unknown = _text_list(meta.get("unknown"))
    if unknown is None:
        problems.append(
            Problem(name, at("unknown"), f"'unknown' must be a list such as [{', '.join(MODULE_FACTS)}]")
        )
        unknown = []
    for item in unknown:
        if item not in MODULE_FACTS:
            problems.append(
                Problem(
                    name, at("unknown"), f"'unknown' lists '{item}'; it can list {', '.join(MODULE_FACTS)}"
                )
            )
    facts: dict[str, str] = {}
    for key in MODULE_FACTS:
        value = meta.get(key)
        facts[key] = str(value).strip() if isinstance(value, str | int) else ""
        if facts[key] and key in unknown:
            problems.append(
                Problem(name, at(key), f"'{key}' is given and also listed under 'unknown'; keep one")
            )
        elif not facts[key] and key not in unknown:
            where = at(key) if key in meta.key_lines else 1
            problems.append(
                Problem(
                    name,
                    where,
                    f"'{key}' is missing: give it as the sources state it, or write "
                    f"'unknown: [{key}]' if they do not",
                )
            )
    if meta.get("notes") is not None and not isinstance(meta.get("notes"), str):
        problems.append(Problem(name, at("notes"), "'notes' must be a text"))
    for key in ("title", "format", "summary", *MODULE_FACTS):
        if isinstance(meta.get(key), str):
            problems += note_problems(name, at(key), f"'{key}'", meta[key])
    if isinstance(meta.get("source"), str) and meta["source"].strip():
        problems += source_problems(name, at("source"), meta["source"])
    problems += note_problems(name, body_line, "text", body)
    topic_ids = _text_list(meta.get("topics"))
    if not topic_ids:
        problems.append(
            Problem(
                name,
                at("topics") if "topics" in meta.key_lines else 1,
                "'topics' must be a list of topic ids from config/content/topics.yaml",
            )
        )
        topic_ids = []
    for topic in topic_ids:
        if topic not in topics.by_id:
            guess = topics.match(topic)
            hint = f"; did you mean '{guess.id}'?" if guess else ""
            problems.append(
                Problem(
                    name,
                    at("topics"),
                    f"unknown topic '{topic}'{hint} (known: {', '.join(t.id for t in topics)})",
                )
            )
    summary = str(meta.get("summary") or "").strip()
    for line, message in markdown_problems(summary):
        problems.append(Problem(name, at("summary") + line, f"summary: {message}"))
    for line, message in markdown_problems(body):
        problems.append(Problem(name, body_line + line, message))
    sections = _sections(body, body_line, name, problems)
    if not sections:
        problems.append(Problem(name, body_line, "no sections: the body needs at least one '## Title'"))
    if problems:
        return None, problems
    return Module(
        id=module_id,
        title=str(meta["title"]).strip(),
        format=str(meta["format"]).strip(),
        topics=tuple(topic_ids),
        summary=summary,
        sections=tuple(sections),
        source=str(meta["source"]).strip(),
        duration=facts["duration"],
        audience=facts["audience"],
        unknown=tuple(unknown),
        notes=str(meta.get("notes") or "").strip(),
        file=name,
    ), []


_FIGURE = re.compile(r"\d+(?:[.,]\d{3})*")


def figures(module: Module) -> set[str]:
    """Every number in what users read of a module, without thousands separators ("2.126" and
    "2,126" are the same figure): the versions of one module must agree on them."""
    texts = [module.title, module.format, module.duration, module.audience, module.summary]
    texts += [text for s in module.sections for text in (s.title, s.body)]
    return {re.sub(r"[.,]", "", found) for text in texts for found in _FIGURE.findall(text)}


def _parity_problems(modules: dict[str, list[Module]], german_files: set[str]) -> list[Problem]:
    """A translated module has a German original with the same topics and the same figures.

    A translation has the file name and id of its original. A German module without a
    translation is no problem: users of that locale get the German text
    (``Content.modules_for``); ``missing_translations`` lists them."""
    reference = {m.id: m for m in modules.get(REFERENCE_LOCALE, [])}
    problems: list[Problem] = []
    for locale, found in modules.items():
        if locale == REFERENCE_LOCALE:
            continue
        for module in found:
            original = reference.get(module.id)
            if original is None and Path(module.file).name in german_files:
                continue  # the German file has problems of its own
            if original is None:
                problems.append(
                    Problem(
                        module.file,
                        1,
                        f"module '{module.id}' has no German version (a file in modules/ with the same id)",
                    )
                )
                continue
            if set(module.topics) != set(original.topics):
                problems.append(
                    Problem(
                        module.file, 1, f"topics differ from {original.file}: {', '.join(original.topics)}"
                    )
                )
            ours, theirs = figures(module), figures(original)
            if ours != theirs:
                only_there = ", ".join(sorted(theirs - ours)) or "-"
                only_here = ", ".join(sorted(ours - theirs)) or "-"
                problems.append(
                    Problem(
                        module.file,
                        1,
                        f"figures differ from {original.file} (same facts in every language): only there "
                        f"{only_there}; only here {only_here}",
                    )
                )
    return problems


def missing_translations(content: Content) -> dict[str, list[str]]:
    """Per locale with modules of its own: the German module ids it has no version of."""
    reference = [m.id for m in content.modules.get(REFERENCE_LOCALE, [])]
    return {
        locale: [i for i in reference if i not in {m.id for m in found}]
        for locale, found in content.modules.items()
        if locale != REFERENCE_LOCALE
    }


# --- topics ---------------------------------------------------------------------------------


def load_topic_files(folder: Path = TOPICS_DIR, root: Path | None = None) -> tuple[TopicList, list[Problem]]:
    """The topic list from ``folder/<locale>.yaml`` (ids as in the German file) and its problems."""
    root = root or folder.parent
    problems: list[Problem] = []
    found: dict[str, dict[str, tuple[str, str, tuple[str, ...], int]]] = {}
    files: dict[str, str] = {}
    named: dict[str, set[str]] = {}  # every id a file names, valid entry or not
    for path in sorted(folder.glob("*.yaml")):
        name = _rel(path, root)
        if path.stem not in LOCALES:
            problems.append(
                Problem(
                    name,
                    1,
                    f"unknown locale '{path.stem}' (use {' or '.join(f'{loc}.yaml' for loc in LOCALES)})",
                )
            )
            continue
        try:
            data = _yaml(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problems.append(Problem(name, 1, "file is not UTF-8 text"))
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(name, *_yaml_error(exc)))
            continue
        if not isinstance(data, _Located) or not isinstance(data.get("topics"), list):
            problems.append(Problem(name, 1, "expected a list of topics under 'topics:'"))
            continue
        files[path.stem] = name
        problems += _unknown_fields(name, data, {"source", "topics", "notes"}, data.key_lines.__getitem__)
        if not isinstance(data.get("source"), str) or not data["source"].strip():
            problems.append(Problem(name, data.key_lines.get("source", 1), "'source' is missing or empty"))
        else:
            problems += source_problems(name, data.key_lines["source"], data["source"])
        entries = found.setdefault(path.stem, {})
        for index, raw in enumerate(data["topics"], start=1):
            if not isinstance(raw, _Located):
                problems.append(
                    Problem(name, data.key_lines["topics"], f"topic {index} is not a mapping of fields")
                )
                continue

            def at(key: str, raw: _Located = raw) -> int:
                return raw.key_lines.get(key, raw.line)

            before = len(problems)
            problems += _unknown_fields(name, raw, TOPIC_FIELDS, at)
            for key in TOPIC_REQUIRED:
                if not isinstance(raw.get(key), str) or not raw[key].strip():
                    problems.append(Problem(name, at(key), f"topic {index}: '{key}' is missing or empty"))
                elif key != "id":
                    problems += note_problems(name, at(key), f"'{key}'", raw[key])
            topic_id = str(raw.get("id") or "").strip()
            named.setdefault(path.stem, set()).add(topic_id)
            problems += _id_problems(name, topic_id, at)
            if topic_id in entries:
                problems.append(
                    Problem(
                        name, at("id"), f"duplicate id '{topic_id}' (first at line {entries[topic_id][3]})"
                    )
                )
            aliases = _text_list(raw.get("aliases"))
            if aliases is None:
                problems.append(Problem(name, at("aliases"), "'aliases' must be a list of words"))
            if len(problems) > before or aliases is None:
                continue
            entries[topic_id] = (raw["name"].strip(), raw["description"].strip(), tuple(aliases), at("id"))
    reference = found.get(REFERENCE_LOCALE)
    if reference is None:
        problems.append(
            Problem(_rel(folder / f"{REFERENCE_LOCALE}.yaml", root), 1, "the German topic list is missing")
        )
        return TopicList([]), problems
    for locale, entries in found.items():
        if locale == REFERENCE_LOCALE:
            continue
        for topic_id in sorted(reference.keys() - named.get(locale, set())):
            problems.append(
                Problem(
                    files[locale],
                    1,
                    f"topic '{topic_id}' is missing (every locale lists the ids of "
                    f"{files[REFERENCE_LOCALE]})",
                )
            )
        for topic_id in sorted(entries.keys() - named.get(REFERENCE_LOCALE, set())):
            problems.append(
                Problem(
                    files[locale],
                    entries[topic_id][3],
                    f"topic '{topic_id}' is not in {files[REFERENCE_LOCALE]}",
                )
            )
    topics = [
        Topic(
            id=topic_id,
            name={loc: e[topic_id][0] for loc, e in found.items() if topic_id in e},
            description={loc: e[topic_id][1] for loc, e in found.items() if topic_id in e},
            aliases=tuple(alias for e in found.values() if topic_id in e for alias in e[topic_id][2]),
        )
        for topic_id in reference
    ]
    problems.sort(key=lambda p: (p.file, p.line))
    return TopicList(topics), problems


# --- everything -----------------------------------------------------------------------------


def load_content(
    root: Path | None = None, topics: TopicList | None = None, example_locales: Iterable[str] | None = None
) -> tuple[Content, list[Problem]]:
    """Read and check all content below ``root``; returns what is valid and every problem.
    ``example_locales``: read and check the FAQ examples of these locales only, and leave the
    others for their first use (a German bot does not read the English examples at start)."""
    reading = None if example_locales is None else set(example_locales)
    root = Path(root or CONTENT_DIR)
    content = Content()
    problems: list[Problem] = []
    if topics is None:  # the topics the bot uses are the shipped ones
        topics, found = load_topic_files(TOPICS_DIR, CONTENT_DIR)
        problems += found
    faq_dir = root / "faq"
    if not faq_dir.is_dir():
        problems.append(Problem(_rel(faq_dir, root), 1, "FAQ folder missing"))
    else:
        for path in sorted(faq_dir.glob("*.yaml")):
            if path.stem.startswith(SYNONYMS_PREFIX) and path.stem[len(SYNONYMS_PREFIX) :] in LOCALES:
                synonyms, found = load_synonym_file(path, root)
                content.synonyms[path.stem[len(SYNONYMS_PREFIX) :]] = synonyms
                problems += found
                continue
            if path.stem.startswith(EXAMPLES_PREFIX) and path.stem[len(EXAMPLES_PREFIX) :] in LOCALES:
                locale = path.stem[len(EXAMPLES_PREFIX) :]
                if reading is not None and locale not in reading:
                    content.example_files[locale] = path
                    continue
                examples, found = load_example_file(path, root)
                content.faq_examples[locale] = examples
                problems += found
                continue
            if path.stem not in LOCALES:
                problems.append(
                    Problem(
                        _rel(path, root),
                        1,
                        f"unknown locale '{path.stem}' (use {' or '.join(f'{loc}.yaml' for loc in LOCALES)})",
                    )
                )
                continue
            entries, found = load_faq_file(path, root)
            content.faq[path.stem] = entries
            problems += found
        if "de" not in content.faq:
            problems.append(Problem(_rel(faq_dir / "de.yaml", root), 1, "the German FAQ is missing"))
        problems += _example_problems(content, root)
    module_dir = root / "modules"
    if module_dir.is_dir():
        folders = [(REFERENCE_LOCALE, module_dir)]
        others = [f"modules/{loc}/" for loc in LOCALES if loc != REFERENCE_LOCALE]
        for folder in sorted(p for p in module_dir.iterdir() if p.is_dir()):
            if folder.name in LOCALES and folder.name != REFERENCE_LOCALE:
                folders.append((folder.name, folder))
            else:
                problems.append(
                    Problem(
                        _rel(folder, root),
                        1,
                        f"unknown locale folder '{folder.name}' (German modules go directly in "
                        f"modules/, others in {' or '.join(others)})",
                    )
                )
        for locale, folder in folders:
            first_file: dict[str, str] = {}
            modules: list[Module] = []
            for path in sorted(folder.glob("*.md")):
                module, found = load_module_file(path, root, topics)
                problems += found
                if module is None:
                    continue
                if module.id in first_file:
                    problems.append(
                        Problem(
                            module.file,
                            2,
                            f"duplicate module id '{module.id}' (also in {first_file[module.id]})",
                        )
                    )
                    continue
                first_file[module.id] = module.file
                modules.append(module)
            if modules:
                content.modules[locale] = modules
        german_files = {path.name for path in module_dir.glob("*.md")}
        problems += _parity_problems(content.modules, german_files)
    problems.sort(key=lambda p: (p.file, p.line))
    return content, problems
