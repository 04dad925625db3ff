"""Packages that nio imports but the bot never uses, loaded only if something reads them.

nio imports a few packages when it is itself imported, for paths the bot never takes:
- h11 and h2, with hpack and hyperframe under h2: the HTTP/1.1 and HTTP/2 transports of nio's
  synchronous ``HttpClient``. The bot talks through ``AsyncClient``, which uses aiohttp.
- Crypto (pycryptodome): encrypted attachments and exported room keys. The bot sends neither.

The console script (``bot.launch``) calls ``defer`` before anything imports nio. From then on,
importing one of these modules makes its module object at once, but runs its code only when
one of its attributes is first read (``DeferredModule``). The attributes the import system
reads itself (``__spec__``, ``__path__``, ``__name__``) do not count as a first read. So
``import h11`` twice, or ``import h2.connection``, leaves the modules unloaded. A name taken
with ``from X import Y`` is a read of ``X``, so only modules nio imports whole stay unloaded.
Before the first answer of a start this saves 20–40 ms of CPU, out of about 0.5 s, and 2 MB of
memory (bench/README.md, "The sixteenth series").

A deferred module that is read is loaded then, in the thread that read it, and from then on it
is an ordinary module, the same object. Python's own ``importlib.util.LazyLoader`` does the same,
but counts the import system's own reads, so a second ``import h11`` would load h11.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

# top-level packages nio imports but the bot does not use (see the module's docstring)
DEFERRED = frozenset({"h11", "h2", "hpack", "hyperframe", "Crypto"})
# what the import system reads of a module it has imported; none of it needs the module's code
IMPORT_SYSTEM_READS = frozenset({"__spec__", "__path__", "__name__", "__class__"})


class DeferredModule(types.ModuleType):
    """A module whose code has not run yet; the first read of an attribute (but the import
    system's) runs it, and the module becomes an ordinary ``ModuleType``."""

    def __getattribute__(self, name: str) -> Any:
        if name not in IMPORT_SYSTEM_READS:
            _load(self)
        # ModuleType's own lookup, with a module-level __getattr__ (PEP 562) as its fallback
        return types.ModuleType.__getattribute__(self, name)

    def __delattr__(self, name: str) -> None:
        _load(self)
        types.ModuleType.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        _load(self)
        return list(types.ModuleType.__dir__(self))


class DeferringLoader(importlib.abc.Loader):
    """Stands in for ``loader`` until the module is read; then it runs the module's code with
    ``loader`` and puts ``loader`` back in the module's spec."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lock = threading.RLock()  # two threads reading the module first run it once
        self.running = False  # the module's code is running (reads from it see it as it is)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__class__ = DeferredModule

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


def _load(module: types.ModuleType) -> None:
    spec = object.__getattribute__(module, "__spec__")
    loader = spec.loader
    if not isinstance(loader, DeferringLoader):  # run already
        return
    with loader.lock:  # a second thread waits here until the first has run the code
        if loader.running or type(module) is not DeferredModule:
            return  # the code is running in this thread (it imports from itself), or has run
        loader.running = True
        try:
            loader.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(spec.name, None)  # as a failed import leaves it
            raise
        finally:
            loader.running = False
        module.__class__ = types.ModuleType  # type: ignore[assignment]  # narrowed by the check above
        spec.loader = loader.loader
        module.__loader__ = loader.loader


class DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of ``packages`` as the finders after it would, with a deferring loader."""

    def __init__(self, packages: frozenset[str]) -> None:
        self.packages = packages

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.packages:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        # only modules run from code can wait; an extension module is made by create_module
        if isinstance(
            loader, importlib.machinery.SourceFileLoader | importlib.machinery.SourcelessFileLoader
        ):
            spec.loader = DeferringLoader(loader)
        return spec


def defer(packages: frozenset[str] = DEFERRED) -> bool:
    """Defer the modules of ``packages`` imported from now on (idempotent; modules imported
    already stay as they are). False if it was in place already."""
    if any(isinstance(finder, DeferringFinder) for finder in sys.meta_path):
        return False
    sys.meta_path.insert(0, DeferringFinder(packages))
    return True


def unread() -> list[str]:
    """The deferred modules whose code has not run, because nothing has read them yet."""
    return sorted(name for name, module in list(sys.modules.items()) if type(module) is DeferredModule)


def undefer() -> None:
    """Take ``defer``'s finder out again; modules deferred so far load when read, as before."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, DeferringFinder)]
