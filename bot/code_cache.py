"""The methods that dataclasses generate, kept compiled from one start to the next.

A dataclass's ``__init__``, ``__repr__``, ``__eq__`` and the like are written as source text
and compiled each time the class is created: Python 3.11 and 3.12 compile once per method,
3.13 once per class. Before its first answer a start of ``kleinstadtbot`` creates about
1,050 of them (nio's events and responses, aiohttp, pydantic, the bot's own records).
Compiling them took 70 ms of the 0.53 s of CPU a warm restart with 1,000 rooms spent before
its first answer (bench/README.md, "The fifteenth series").

``install`` (called by the console script, ``bot.launch``) gives the ``dataclasses`` module
its own ``exec``. This ``exec`` looks the text up in a file of code compiled before, under a
digest of the text and of the compile flags the builtin would use. Text that is not in the
file is compiled as before, and ``finish`` writes it to the file once the start is over.

The file is named after Python's bytecode magic number, like ``__pycache__``'s files. It
lives in the user's cache folder, because the start needs it before the settings (and with
them the data folder) are read:
- ``$CACHE_DIRECTORY`` under systemd (``CacheDirectory=``);
- else ``$XDG_CACHE_HOME/kleinstadtbot``;
- else ``~/.cache/kleinstadtbot``.

Deleting the file costs one slower start. The stored code is what compiling the same text
gives. Anything unexpected (no folder, a damaged file, another Python) means compiling as
before.
"""

from __future__ import annotations
import __future__

import contextlib
import dataclasses
import hashlib
import logging
import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Any

log = logging.getLogger(__name__)

# The flags of ``from __future__ import …``: the builtin ``exec`` compiles text with those of
# the module that calls it (dataclasses has none today), so the stand-in passes them on too.
FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag

_installed: CompiledCode | None = None


def cache_folder() -> Path | None:
    """Where the file lives (see the module's docstring); none without a home folder."""
    if os.environ.get("CACHE_DIRECTORY"):  # systemd's CacheDirectory=; a list if it names several
        return Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "kleinstadtbot"
    try:
        return Path.home() / ".cache" / "kleinstadtbot"
    except RuntimeError:  # no home folder to be found
        return None


class CompiledCode:
    """Code objects compiled from text, stored in ``path`` under a digest of text and flags."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stored: dict[bytes, bytes] = self._read()
        self.used: set[bytes] = set()  # stored entries this process took
        self.added: dict[bytes, bytes] = {}  # compiled here, not yet written

    def _read(self) -> dict[bytes, bytes]:
        try:
            data = self.path.read_bytes()
        except OSError:  # none yet, or not readable: everything is compiled
            return {}
        if not data.startswith(MAGIC_NUMBER):  # another Python wrote it
            return {}
        try:
            stored = marshal.loads(memoryview(data)[len(MAGIC_NUMBER) :])
        except (EOFError, ValueError, TypeError):
            log.debug("%s is damaged; compiling afresh", self.path)
            return {}
        return stored if isinstance(stored, dict) else {}

    def compile(self, source: str, flags: int) -> CodeType:
        """``compile(source, "<string>", "exec")`` with ``flags``, from the file when it is there."""
        key = hashlib.blake2b(
            b"%d\0%s" % (flags, source.encode("utf-8", "surrogatepass")), digest_size=16
        ).digest()
        blob = self.stored.get(key)
        if blob is not None:
            try:
                code = marshal.loads(blob)
            except (EOFError, ValueError, TypeError):
                code = None
            if isinstance(code, CodeType):
                self.used.add(key)
                return code
        code = compile(source, "<string>", "exec", flags=flags, dont_inherit=True)
        self.added[key] = marshal.dumps(code)
        return code

    def save(self) -> bool:
        """Write what was compiled since the last save, if anything; True if the file was written.

        Entries this process did not take are kept as long as they are fewer than the ones it
        took or added (another command of the bot may take them), else they are dropped: what
        an upgrade left behind does not pile up."""
        if not self.added:
            return False
        taken = self.used | self.added.keys()
        if len(self.stored.keys() - taken) > len(taken):
            self.stored = {key: self.stored[key] for key in self.used}
        self.stored.update(self.added)
        self.used |= self.added.keys()
        self.added = {}
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial.write_bytes(MAGIC_NUMBER + marshal.dumps(self.stored))
            os.replace(partial, self.path)  # whole or not at all, also beside another process
        except OSError as exc:
            log.debug("the compiled dataclass methods could not be kept in %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)  # a full disk, say: no half file left behind
            return False
        return True

    def exec_function(self) -> Any:
        """A stand-in for the builtin ``exec`` that takes text's code from this store."""
        builtin_exec = exec

        def exec_compiled(source: Any, globals: Any = None, locals: Any = None, /, **options: Any) -> None:
            if type(source) is str:
                caller = sys._getframe(1)
                if globals is None:  # as the builtin: the caller's namespaces
                    globals = caller.f_globals
                    if locals is None:
                        locals = caller.f_locals
                source = self.compile(source, caller.f_code.co_flags & FUTURE_FLAGS)
            builtin_exec(source, globals, locals, **options)

        return exec_compiled


def install(folder: Path | None = None) -> CompiledCode | None:
    """Give ``dataclasses`` the stand-in ``exec``, its file in ``folder`` (else ``cache_folder()``);
    a second call keeps the first one's store."""
    global _installed
    if _installed is not None:
        return _installed
    folder = folder if folder is not None else cache_folder()
    if folder is None:
        return None
    _installed = CompiledCode(folder / f"generated-code.{sys.implementation.cache_tag}.marshal")
    vars(dataclasses)["exec"] = _installed.exec_function()  # a module global hides the builtin
    return _installed


def finish(reason: str) -> None:
    """Write what the start compiled and give ``dataclasses`` back the builtin ``exec``: the
    store's memory is freed, later dataclasses compile as without it. A no-op if not installed."""
    global _installed
    store, _installed = _installed, None
    if store is None:
        return
    vars(dataclasses).pop("exec", None)
    taken, compiled = len(store.used), len(store.added)
    written = store.save()
    log.debug(
        "dataclass methods: %d from %s, %d compiled%s (%s)",
        taken,
        store.path,
        compiled,
        ", written to it" if written else "",
        reason,
    )
