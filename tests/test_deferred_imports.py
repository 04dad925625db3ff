"""Packages loaded only when read (``bot.deferred_imports``): imports that run nothing, a first read
that runs the module once and leaves an ordinary module, errors where they belong, and nio's own
unused packages left unloaded while nio still works."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from bot import deferred_imports
from bot.deferred_imports import DeferredModule

MODULES = {
    "__init__.py": "x = 1\n",
    "sub.py": "y = 2\n",
    "greedy.py": "from . import sub\nfrom .sub import y as taken\n",
    "fallback.py": "def __getattr__(name):\n    return f'made {name}'\n",
    "broken.py": "raise RuntimeError('broken on purpose')\n",
    "slow.py": "import time\ntime.sleep(0.3)\nz = 3\n",
}


@pytest.fixture
def ran(tmp_path, monkeypatch):
    """A package ``deferpkg`` whose modules note in the returned list when their code runs,
    deferred as the console script defers nio's unused packages."""
    package = tmp_path / "deferpkg"
    package.mkdir()
    for name, code in MODULES.items():
        (package / name).write_text(f"import deferlog\ndeferlog.ran.append(__name__)\n{code}")
    noted = types.ModuleType("deferlog")
    noted.ran = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deferlog", noted)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert deferred_imports.defer(frozenset({"deferpkg"}))
    yield noted.ran
    deferred_imports.undefer()
    for name in [name for name in sys.modules if name.partition(".")[0] == "deferpkg"]:
        del sys.modules[name]


def test_importing_runs_nothing_and_the_first_read_runs_the_module_once(ran):
    import deferpkg
    import deferpkg as again  # a second import reads what the import system reads, nothing more

    assert ran == []
    assert type(deferpkg) is DeferredModule
    assert deferred_imports.unread() == ["deferpkg"]
    assert deferpkg.x == 1
    assert ran == ["deferpkg"]
    assert type(deferpkg) is types.ModuleType  # an ordinary module from now on
    assert again is deferpkg is sys.modules["deferpkg"]
    assert deferpkg.x == 1 and ran == ["deferpkg"]
    assert deferred_imports.unread() == []


def test_a_submodule_import_leaves_its_package_unread_too(ran):
    import deferpkg.sub

    assert ran == []
    assert deferred_imports.unread() == ["deferpkg", "deferpkg.sub"]
    assert deferpkg.sub.y == 2
    assert ran == ["deferpkg", "deferpkg.sub"]


def test_from_import_is_a_read(ran):
    from deferpkg import x

    assert x == 1 and ran == ["deferpkg"]


def test_a_module_that_imports_from_itself_and_its_package_runs_once(ran):
    import deferpkg.greedy

    assert deferpkg.greedy.taken == 2
    assert ran == ["deferpkg", "deferpkg.greedy", "deferpkg.sub"]


def test_a_module_level_getattr_still_answers_the_first_read(ran):
    import deferpkg.fallback

    assert deferpkg.fallback.anything == "made anything"
    assert "__getattr__" in dir(deferpkg.fallback)


def test_dir_reads_the_module(ran):
    import deferpkg.sub

    assert "y" in dir(deferpkg.sub)
    assert "deferpkg.sub" in ran


def test_a_module_that_fails_fails_when_read_and_is_not_kept(ran):
    import deferpkg.broken  # its code has not run, so nothing fails yet

    with pytest.raises(RuntimeError, match="broken on purpose"):
        _ = deferpkg.broken.anything
    assert "deferpkg.broken" not in sys.modules  # as after any failed import
    fresh = importlib.import_module("deferpkg.broken")
    with pytest.raises(RuntimeError, match="broken on purpose"):
        _ = fresh.anything
    assert ran.count("deferpkg.broken") == 2


def test_two_threads_reading_first_run_the_module_once(ran):
    import deferpkg.slow

    seen: list[int] = []
    readers = [threading.Thread(target=lambda: seen.append(deferpkg.slow.z)) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(10)
    assert seen == [3, 3]
    assert ran.count("deferpkg.slow") == 1


def test_other_packages_and_a_second_defer_are_left_alone(ran, tmp_path):
    assert not deferred_imports.defer(frozenset({"plainmod"}))  # in place already: nothing added
    (tmp_path / "plainmod.py").write_text("import deferlog\ndeferlog.ran.append(__name__)\n")
    try:
        import plainmod
    finally:
        sys.modules.pop("plainmod", None)
    assert ran == ["plainmod"]  # run at its import, as ever
    assert type(plainmod) is types.ModuleType


def test_nio_imported_after_defer_leaves_its_unused_packages_unloaded_and_still_works():
    """In a fresh interpreter, as the console script starts: the runtime and nio imported with
    h11, h2 and pycryptodome's ciphers unloaded; then each of them works when it is used."""
    script = textwrap.dedent(
        """
        from bot import deferred_imports
        deferred_imports.defer()
        import bot.runtime
        unread = deferred_imports.unread()
        assert {"h11", "h2.connection", "Crypto.Cipher.AES"} <= set(unread), unread
        import h11, h2.connection
        assert h11.Connection(our_role=h11.CLIENT).our_state is h11.IDLE
        assert h2.connection.H2Connection().state_machine.state.name == "IDLE"
        from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
        data, keys = encrypt_attachment(b"Ratssitzung am Dienstag")
        plain = decrypt_attachment(data, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"])
        assert plain == b"Ratssitzung am Dienstag"
        assert not {"h11", "h2.connection", "Crypto.Cipher.AES"} & set(deferred_imports.unread())
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-3000:]
