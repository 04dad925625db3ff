"""Commands declared once: name, aliases, arguments, role, summary, help and examples.

``!help``, usage lines and "did you mean" all come from these declarations, so they cannot drift
from the code. A family module declares its commands with ``@command`` (and ``.subcommand``)
at import time; ``commands.load_families()`` imports every family.

Summaries, help texts, argument labels and examples are German, marked with ``N_`` for the
message catalogs (``config.catalogs``) and translated where they are shown. Usage lines and
examples name a command as the sender typed it (``!eligible`` stays ``!eligible`` on a German
bot), otherwise by its name in the bot's locale.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from commands.context import Context, Reaction, Redaction, Request, Role, Services
from commands.parsing import parse_number
from config.catalogs import translate

if TYPE_CHECKING:
    from commands.scheduling import Deliver

Handler = Callable[..., Awaitable[None]]
ArgKind = Literal["word", "text", "int", "mxid", "choice", "message"]
MXID_RE = re.compile(r"^@[^\s:]+:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
MAX_TEXT_ARG = 500
USAGE = "usage"  # the catalog context of argument labels: placeholders in usage lines
Text = str  # a declared text: German, marked with N_ (or NP_) for the message catalogs


def text_in(value: Text, locale: str, context: str | None = None) -> str:
    """A declared text in ``locale``, translated by the message catalog."""
    return translate(locale, value, context)


@dataclass(frozen=True)
class Arg:
    """One argument. ``text`` takes the rest of the line; ``choice`` one of ``choices``;
    ``message`` the lines after the command's line exactly as written (line breaks, quotes and
    Markdown kept, no length limit of its own): a command with one reads only its first line as
    words (``Dispatcher``)."""

    name: str
    kind: ArgKind = "word"
    required: bool = True
    choices: tuple[str, ...] = ()
    label: Text = ""  # shown in usage lines: German, marked with NP_("usage", …)

    def usage(self, locale: str) -> str:
        label = text_in(self.label, locale, USAGE) or self.name
        if self.kind == "choice":
            label = "|".join(self.choices)
        shown = f"<{label}>" if self.required else f"[{label}]"
        return f"↵ {shown}" if self.kind == "message" else shown


class UsageError(Exception):
    """The arguments do not fit. ``problem`` is a template-friendly code, ``detail`` its data."""

    def __init__(self, problem: str, **detail: Any):
        super().__init__(problem)
        self.problem = problem
        self.detail = detail


@dataclass
class Command:
    name: str
    handler: Handler | None
    summary: Text
    help: Text = ""
    examples: list[str] = field(default_factory=list)  # from the command word on, e.g. "hilfe ping"
    aliases: dict[str, list[str]] = field(default_factory=dict)
    args: list[Arg] = field(default_factory=list)
    role: Role = Role.MEMBER
    group: str = "general"
    hidden: bool = False
    # recorded in the audit trail (who, when, what, outcome) by the dispatcher: every command
    # that changes what others see (storage.audit); subcommands inherit it
    audited: bool = False
    parent: Command | None = None
    subcommands: dict[str, Command] = field(default_factory=dict)
    text_values: dict[str, str] = field(default_factory=dict)  # fills %(name)s in summary and help

    # --- declaration -----------------------------------------------------------------------

    def subcommand(
        self,
        name: str,
        *,
        summary: Text,
        args: list[Arg] | None = None,
        role: Role | None = None,
        aliases: dict[str, list[str]] | None = None,
        examples: list[str] | None = None,
        help: Text = "",
        audited: bool | None = None,
    ) -> Callable[[Handler], Command]:
        def register(handler: Handler) -> Command:
            sub = Command(
                name=name,
                handler=handler,
                summary=summary,
                help=help,
                examples=examples or [],
                aliases=aliases or {},
                args=args or [],
                role=self.role if role is None else role,
                group=self.group,
                audited=self.audited if audited is None else audited,
                parent=self,
            )
            for word in sub.all_names():
                if word in self.subcommands:
                    raise ValueError(f"subcommand {word!r} of {self.name} declared twice")
                self.subcommands[word] = sub
            return sub

        return register

    # --- reading ---------------------------------------------------------------------------

    def all_names(self) -> list[str]:
        names = [self.name]
        for words in self.aliases.values():
            names.extend(w for w in words if w not in names)
        return names

    def display_name(self, locale: str) -> str:
        """German users see the German alias first, English users the English one."""
        local = self.aliases.get(locale) or []
        return local[0] if local else self.name

    @property
    def path(self) -> list[Command]:
        return [*(self.parent.path if self.parent else []), self]

    def shown_words(self, locale: str, typed: Sequence[str] = ()) -> list[str]:
        """The words that call this command: as the sender typed them (``typed``, lower-case,
        from the top-level word on), else each command's name in ``locale``."""
        return [
            typed[depth]
            if depth < len(typed) and typed[depth] in cmd.all_names()
            else cmd.display_name(locale)
            for depth, cmd in enumerate(self.path)
        ]

    def invocation(self, prefix: str, locale: str, typed: Sequence[str] = ()) -> str:
        """``!berechtigt``, ``!tandem anlegen``: the command as texts show it."""
        return prefix + " ".join(self.shown_words(locale, typed))

    def usage(self, prefix: str, locale: str, typed: Sequence[str] = ()) -> str:
        return " ".join([self.invocation(prefix, locale, typed), *(a.usage(locale) for a in self.args)])

    def example_lines(self, prefix: str, locale: str, typed: Sequence[str] = ()) -> list[str]:
        """The declared examples in ``locale``; their command words (``berechtigt``, ``zentralort
        setzen``) become the words of ``invocation``."""
        return [self._example(text_in(e, locale), prefix, locale, typed) for e in self.examples]

    def _example(self, example: str, prefix: str, locale: str, typed: Sequence[str]) -> str:
        words = example.split(" ")
        cmd = self.path[0]
        if words[0].lower() not in cmd.all_names():
            return prefix + example
        rest = words[1:]
        while rest and rest[0].lower() in cmd.subcommands:
            cmd, rest = cmd.subcommands[rest[0].lower()], rest[1:]
        same = 0  # what the sender typed applies where the example follows this command's path
        while same < min(len(cmd.path), len(self.path)) and cmd.path[same] is self.path[same]:
            same += 1
        return " ".join([cmd.invocation(prefix, locale, typed[:same]), *rest])

    def unique_subcommands(self) -> list[Command]:
        seen: list[Command] = []
        for sub in self.subcommands.values():
            if sub not in seen:
                seen.append(sub)
        return seen

    @property
    def words(self) -> str:
        """The command's words by their declared (English) names: ``tandem pause``. Metrics, logs
        and the audit trail name commands so, whatever alias was typed."""
        return " ".join(cmd.name for cmd in self.path)

    def min_role(self) -> Role:
        """The least role that can use this command or any of its subcommands."""
        roles = [self.role] if self.handler else []
        roles += [s.min_role() for s in self.unique_subcommands()]
        return min(roles, default=self.role)

    def text(self, attr: Literal["summary", "help"], locale: str) -> str:
        value: Text = getattr(self, attr)
        shown = text_in(value, locale)
        return shown % self.text_values if self.text_values and shown else shown

    # --- binding ---------------------------------------------------------------------------

    def takes_message(self) -> bool:
        return any(arg.kind == "message" for arg in self.args)

    def bind(self, words: list[str], message: str | None = None) -> dict[str, Any]:
        """Match words (and the ``message`` lines after the command's line) to the declared
        arguments; raises UsageError."""
        values: dict[str, Any] = {}
        rest = list(words)
        for arg in self.args:
            if arg.kind == "message":
                values[arg.name] = message.strip("\n") if message and message.strip() else None
                if arg.required and values[arg.name] is None:
                    raise UsageError("missing", arg=arg)
                continue
            if not rest:
                if arg.required:
                    raise UsageError("missing", arg=arg)
                values[arg.name] = None
                continue
            if arg.kind == "text":
                text = " ".join(rest).strip()
                rest = []
                if not text:  # only empty quotes: nothing given
                    if arg.required:
                        raise UsageError("missing", arg=arg)
                    values[arg.name] = None
                    continue
                if len(text) > MAX_TEXT_ARG:
                    raise UsageError("too_long", arg=arg, limit=MAX_TEXT_ARG)
                values[arg.name] = text
                continue
            word = rest.pop(0)
            if not word.strip():  # "" or " ": nothing given (an empty name must not become one)
                if arg.required:
                    raise UsageError("missing", arg=arg)
                values[arg.name] = None
                continue
            if arg.kind == "int":
                number = parse_number(word)
                if number is None:
                    raise UsageError("not_a_number", arg=arg, value=word)
                values[arg.name] = number
            elif arg.kind == "mxid":
                if not MXID_RE.fullmatch(word):
                    raise UsageError("not_a_user", arg=arg, value=word)
                values[arg.name] = word
            elif arg.kind == "choice":
                if word.lower() not in arg.choices:
                    raise UsageError("not_a_choice", arg=arg, value=word, choices=arg.choices)
                values[arg.name] = word.lower()
            else:
                if len(word) > MAX_TEXT_ARG:
                    raise UsageError("too_long", arg=arg, limit=MAX_TEXT_ARG)
                values[arg.name] = word
        if rest:
            raise UsageError("extra", words=" ".join(rest))
        return values


class Registry:
    """All top-level commands by every name and alias."""

    def __init__(self) -> None:
        self._by_word: dict[str, Command] = {}
        self.plain_text: Callable[[Context], Awaitable[bool]] | None = None
        self.startup: list[Callable[[Services], Awaitable[None]]] = []
        self.scheduled: dict[str, Deliver] = {}  # scheduled work by kind (commands.scheduling)
        # what families watch besides commands; each returns True when the event was theirs
        self.reactions: list[Callable[[Services, Reaction], Awaitable[bool]]] = []
        self.redactions: list[Callable[[Services, Redaction], Awaitable[bool]]] = []
        self.thread_replies: list[Callable[[Services, Request], Awaitable[bool]]] = []
        self.edits: list[Callable[[Services, Request], Awaitable[bool]]] = []
        # families not imported yet (``commands.load_families(first=True)``): ``complete`` does
        self.pending: Callable[[], None] | None = None

    def complete(self) -> None:
        """Import the command families not imported yet, if any. Every look at the whole set
        (a word not found, the lists, help, suggestions, what families watch) comes here first."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending()

    def add(self, cmd: Command) -> Command:
        for word in cmd.all_names():
            if word in self._by_word:
                raise ValueError(f"command word {word!r} declared twice")
            self._by_word[word] = cmd
        return cmd

    def remove(self, cmd: Command) -> None:
        """Take a command (all its words) out again."""
        for word in cmd.all_names():
            if self._by_word.get(word) is cmd:
                del self._by_word[word]

    def find(self, word: str) -> Command | None:
        cmd = self._by_word.get(word.lower())
        if cmd is None and self.pending is not None:
            self.complete()
            cmd = self._by_word.get(word.lower())
        return cmd

    def words(self) -> dict[str, Command]:
        self.complete()
        return dict(self._by_word)

    def commands(self) -> list[Command]:
        self.complete()
        seen: list[Command] = []
        for cmd in self._by_word.values():
            if cmd not in seen:
                seen.append(cmd)
        return seen

    # --- help support ---------------------------------------------------------------------

    def suggest(self, word: str, role: Role, prefix: str, limit: int = 3) -> list[str]:
        """Command words close to ``word`` that ``role`` may use ("did you mean …")."""
        from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

        self.complete()
        choices = [w for w, c in self._by_word.items() if c.min_role() <= role and not c.hidden]
        found = process.extract(word, choices, scorer=fuzz.WRatio, limit=limit * 3, score_cutoff=60)
        names: list[str] = []
        for match, _score, _index in found:
            cmd = self._by_word[match]
            name = prefix + match
            if name not in names and all(self._by_word[n[len(prefix) :]] is not cmd for n in names):
                names.append(name)
        return names[:limit]

    def visible(self, role: Role) -> dict[str, list[Command]]:
        """Commands ``role`` may use, grouped by their group key, in declaration order."""
        groups: dict[str, list[Command]] = {}
        for cmd in self.commands():
            if cmd.hidden or cmd.min_role() > role:
                continue
            groups.setdefault(cmd.group, []).append(cmd)
        return groups

    def invocation(self, names: Sequence[str], prefix: str, locale: str) -> str:
        """How texts name a command: ``("profile", "town")`` → ``!profil ort`` in German.
        Raises KeyError for a name nobody declared, so a template cannot point to nothing."""
        cmd = self.find(names[0])
        if cmd is None:
            raise KeyError(names[0])
        for name in names[1:]:
            cmd = cmd.subcommands[name]
        return cmd.invocation(prefix, locale)

    def describe(
        self, cmd: Command, role: Role, prefix: str, locale: str, typed: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Template data for ``!help <command>``; ``typed``: the command's words as the sender
        typed them."""
        subs = [
            {
                "usage": s.usage(prefix, locale, typed),
                "summary": s.text("summary", locale),
                "role": s.role.label,
                "allowed": s.role <= role,
            }
            for s in cmd.unique_subcommands()
        ]
        name = cmd.shown_words(locale, typed)[-1]
        return {
            "name": name,
            "usage": cmd.usage(prefix, locale, typed) if cmd.handler else None,
            "summary": cmd.text("summary", locale),
            "help": cmd.text("help", locale),
            "aliases": [prefix + n for n in cmd.all_names() if n != name],
            "examples": cmd.example_lines(prefix, locale, typed),
            "role": cmd.role.label,
            "allowed": cmd.role <= role or any(s.role <= role for s in cmd.unique_subcommands()),
            "subcommands": subs,
        }


REGISTRY = Registry()


def command(
    name: str,
    *,
    summary: Text,
    group: str = "general",
    args: list[Arg] | None = None,
    role: Role = Role.MEMBER,
    aliases: dict[str, list[str]] | None = None,
    examples: list[str] | None = None,
    help: Text = "",
    text_values: dict[str, str] | None = None,
    hidden: bool = False,
    audited: bool = False,
    registry: Registry = REGISTRY,
) -> Callable[[Handler | None], Command]:
    """Declare a top-level command. Decorate ``None``-returning async handlers ``(ctx, **args)``.

    ``summary``, ``help``, argument labels and examples are German marked with ``N_``;
    ``text_values`` fill ``%(name)s`` placeholders in summary and help."""

    def register(handler: Handler | None) -> Command:
        return registry.add(
            Command(
                name=name,
                handler=handler,
                summary=summary,
                help=help,
                text_values=text_values or {},
                examples=examples or [],
                aliases=aliases or {},
                args=args or [],
                role=role,
                group=group,
                hidden=hidden,
                audited=audited,
            )
        )

    return register


def plain_text_handler(
    handler: Callable[[Context], Awaitable[bool]], registry: Registry = REGISTRY
) -> Callable[[Context], Awaitable[bool]]:
    """Register the handler for plain messages in direct chats or with a mention (the FAQ)."""
    registry.plain_text = handler
    return handler


def on_startup(
    hook: Callable[[Services], Awaitable[None]], registry: Registry = REGISTRY
) -> Callable[[Services], Awaitable[None]]:
    """Run ``hook(services)`` once the transport is ready (after login and the first sync in
    Matrix, at once in the console), e.g. to make sure the academy Space exists."""
    registry.startup.append(hook)
    return hook


def scheduled(kind: str, registry: Registry = REGISTRY) -> Callable[[Deliver], Deliver]:
    """Declare a family's scheduled work: ``deliver(services, occurrence)`` runs for every due
    occurrence of a schedule of this ``kind`` (``commands.scheduling``) and returns the event ID
    of what it sent. Its messages use ``occurrence.key`` as their key (exactly once)."""

    def declare(deliver: Deliver) -> Deliver:
        if kind in registry.scheduled:
            raise ValueError(f"scheduled work {kind!r} declared twice")
        registry.scheduled[kind] = deliver
        return deliver

    return declare


def on_reaction(
    handler: Callable[[Services, Reaction], Awaitable[bool]], registry: Registry = REGISTRY
) -> Callable[[Services, Reaction], Awaitable[bool]]:
    """Watch reactions (e.g. answers to a check-in); return True for one that was yours."""
    registry.reactions.append(handler)
    return handler


def on_redaction(
    handler: Callable[[Services, Redaction], Awaitable[bool]], registry: Registry = REGISTRY
) -> Callable[[Services, Redaction], Awaitable[bool]]:
    """Watch redactions (a reaction taken back)."""
    registry.redactions.append(handler)
    return handler


def on_thread_reply(
    handler: Callable[[Services, Request], Awaitable[bool]], registry: Registry = REGISTRY
) -> Callable[[Services, Request], Awaitable[bool]]:
    """Watch messages that are no command but reply to an event or sit in a thread; return True
    when the message answered something of yours (it then gets no FAQ answer)."""
    registry.thread_replies.append(handler)
    return handler


def on_edit(
    handler: Callable[[Services, Request], Awaitable[bool]], registry: Registry = REGISTRY
) -> Callable[[Services, Request], Awaitable[bool]]:
    """Watch edits (m.replace; ``request.replaces`` is the corrected event). Edits are never
    commands."""
    registry.edits.append(handler)
    return handler
