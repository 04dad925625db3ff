"""Operator-editable content: FAQ answers and the module library, loaded and validated.

Layout under ``config/content/`` (or the ``content_dir`` setting):

- ``faq/<locale>.yaml``: ``faq:`` a list of entries (id, question, alternatives, answer, tags,
  optional category and source).
- ``faq/synonyms.<locale>.yaml``: ``synonyms:`` the words and phrases people use for the FAQ's
  own words, for the FAQ search.
- ``modules/*.md``: one module per file, YAML front matter between ``---`` lines (id, title,
  format, topics, duration, audience, summary), then the body in ``## `` sections. Modules in
  ``modules/<locale>/*.md`` are that locale's versions; the top folder holds the German ones.

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

from config.topics import TopicList, default_topics

CONTENT_DIR = Path(__file__).resolve().parent / "content"
LOCALES = ("de", "en")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,59}$")

FAQ_FIELDS = {"id", "question", "alternatives", "answer", "tags", "category", "source"}
FAQ_REQUIRED = ("id", "question", "answer")
MODULE_FIELDS = {"id", "title", "format", "topics", "duration", "audience", "summary", "source"}
MODULE_REQUIRED = ("id", "title", "format", "topics", "duration", "audience", "summary")


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
    id: str
    title: str
    format: str
    topics: tuple[str, ...]
    duration: str
    audience: str
    summary: str
    sections: tuple[Section, ...]
    source: str = ""
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

    def faq_for(self, locale: str) -> list[FaqEntry]:
        return self.faq.get(locale) or self.faq.get("de") or []

    def modules_for(self, locale: str) -> list[Module]:
        return self.modules.get(locale) or self.modules.get("de") or []


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
                Problem(name, data.key_lines.get("faq", 1), f"entry {index} is not a mapping of fields")
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
        for key in ("category", "source"):
            if raw.get(key) is not None and not isinstance(raw.get(key), str):
                problems.append(Problem(name, at(key), f"'{key}' must be a text"))
        answer = raw.get("answer")
        if isinstance(answer, str):
            # block scalars (answer: |) start one line below the key
            offset = at("answer") + (1 if "\n" in answer.strip() or answer.endswith("\n") else 0)
            for line, message in markdown_problems(answer):
                problems.append(Problem(name, offset + line, f"answer of '{entry_id}': {message}"))
        if len(problems) > before:
            continue
        entries.append(
            FaqEntry(
                id=entry_id,
                question=raw["question"].strip(),
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
        duration=str(meta["duration"]).strip(),
        audience=str(meta["audience"]).strip(),
        summary=summary,
        sections=tuple(sections),
        source=str(meta.get("source") or "").strip(),
        file=name,
    ), []


# --- everything -----------------------------------------------------------------------------


def load_content(root: Path | None = None, topics: TopicList | None = None) -> tuple[Content, list[Problem]]:
    """Read and check all content below ``root``; returns what is valid and every problem."""
    root = Path(root or CONTENT_DIR)
    topics = topics or default_topics()
    content = Content()
    problems: list[Problem] = []
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
    module_dir = root / "modules"
    if module_dir.is_dir():
        folders = [("de", module_dir)] + [(loc, module_dir / loc) for loc in LOCALES if loc != "de"]
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
    problems.sort(key=lambda p: (p.file, p.line))
    return content, problems
