"""Dataclasses' generated methods kept compiled between starts (``bot.code_cache``): the same
classes as without it, taken from the file on the next start, and never a failed start."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from importlib.util import MAGIC_NUMBER

import pytest

from bot import code_cache
from bot.code_cache import CompiledCode


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``install`` into ``tmp_path``, as the console script does; afterwards dataclasses is as it was."""
    monkeypatch.setattr(code_cache, "_installed", None)

    def install() -> CompiledCode:
        store = code_cache.install(tmp_path)
        assert store is not None
        return store

    yield install
    code_cache.finish("the test is over")
    assert "exec" not in vars(dataclasses)


def define() -> type:
    """A dataclass with what makes dataclasses generate code: defaults, a factory, order, frozen,
    keyword-only fields, slots and a post-init."""

    @dataclasses.dataclass(frozen=True, order=True, slots=True)
    class Tandem:
        town: str
        partner: str = "Wittstock"
        topics: list[str] = dataclasses.field(default_factory=list, compare=False)
        _: dataclasses.KW_ONLY
        rounds: int = 0

        def __post_init__(self) -> None:
            if self.rounds < 0:
                raise ValueError("rounds")

    return Tandem


def behaviour(cls: type) -> tuple:
    a, b = cls("Bad Belzig", rounds=2), cls("Bad Belzig", "Wittstock", ["Mobilität"], rounds=2)
    try:
        a.town = "Zossen"
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    with pytest.raises(ValueError):
        cls("Zossen", rounds=-1)
    return (
        repr(a),
        a == b,
        a < cls("Zossen"),
        hash(a) == hash(cls("Bad Belzig", rounds=2)),
        frozen,
        str(inspect.signature(cls)),
        cls.__init__.__annotations__,
    )


def test_a_class_is_the_same_compiled_or_taken_from_the_file_and_the_second_start_compiles_nothing(
    installed, tmp_path
):
    plain = behaviour(define())
    first = installed()
    assert behaviour(define()) == plain
    assert first.added and not first.used  # an empty folder: everything compiled
    code_cache.finish("first start")
    [file] = tmp_path.iterdir()
    assert file.name == f"generated-code.{sys.implementation.cache_tag}.marshal"
    assert file.read_bytes().startswith(MAGIC_NUMBER)
    written = file.stat().st_mtime_ns

    second = installed()
    assert behaviour(define()) == plain
    assert second.used and not second.added  # every method from the file
    code_cache.finish("second start")
    assert file.stat().st_mtime_ns == written  # nothing new: not written again


def test_the_future_flags_of_the_caller_count_as_for_the_builtin_exec(installed):
    store = installed()
    stand_in = vars(dataclasses)["exec"]
    source = "def f(x: int) -> None: pass"
    # this module has ``from __future__ import annotations``: the builtin keeps the text
    builtin: dict = {}
    exec(source, {}, builtin)
    ours: dict = {}
    stand_in(source, {}, ours)
    assert ours["f"].__annotations__ == builtin["f"].__annotations__ == {"x": "int", "return": "None"}
    # a caller without it (as dataclasses is) gets the objects, under another key
    without = compile("stand_in(source, {}, namespace)", "<no future>", "exec", dont_inherit=True)
    namespace: dict = {}
    exec(without, {"stand_in": stand_in, "source": source, "namespace": namespace})
    assert namespace["f"].__annotations__ == {"x": int, "return": None}
    assert len(store.added) == 2


def test_without_namespaces_the_stand_in_uses_the_callers_as_the_builtin_does(installed):
    stand_in = installed().exec_function()
    seen: list[str] = []
    here = "a local"  # noqa: F841 (read by the executed text)
    stand_in("seen.append(here)")
    stand_in("seen.append(__name__)")
    assert seen == ["a local", __name__]


def test_a_damaged_or_foreign_file_means_compiling_as_before_and_is_replaced(installed, tmp_path):
    file = tmp_path / f"generated-code.{sys.implementation.cache_tag}.marshal"
    plain = behaviour(define())
    for damaged in (MAGIC_NUMBER + b"\x00\xff not marshal", b"\x00\x00\r\n" + b"other Python", b""):
        file.write_bytes(damaged)
        store = installed()
        assert behaviour(define()) == plain
        assert store.added and not store.used
        code_cache.finish("damaged")
        assert file.read_bytes().startswith(MAGIC_NUMBER) and CompiledCode(file).stored


def test_a_damaged_entry_is_compiled_again(installed):
    plain = behaviour(define())
    first = installed()
    define()
    code_cache.finish("first")
    broken = CompiledCode(first.path)
    broken.added = {key: b"\x00broken" for key in broken.stored}
    assert broken.save()
    second = installed()
    assert behaviour(define()) == plain
    assert second.added and not second.used


def test_entries_an_upgrade_left_behind_are_dropped_once_they_outnumber_the_used(tmp_path):
    store = CompiledCode(tmp_path / "code.marshal")
    for n in range(10):
        store.compile(f"x = {n}", 0)
    assert store.save()
    later = CompiledCode(store.path)
    for n in range(3):  # taken from the file
        later.compile(f"x = {n}", 0)
    later.compile("x = 'new'", 0)
    assert later.save()
    # 6 left behind against 4 taken or added: dropped
    assert len(CompiledCode(store.path).stored) == 4
    again = CompiledCode(store.path)
    for n in range(3):
        again.compile(f"x = {n}", 0)
    again.compile("x = 'newer'", 0)
    assert again.save()
    assert len(CompiledCode(store.path).stored) == 5  # 1 left behind against 4: kept


def test_a_folder_that_cannot_be_written_costs_nothing_but_the_saving(installed, tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    plain = behaviour(define())
    store = code_cache.install(blocker)
    assert store is not None
    assert behaviour(define()) == plain
    with caplog.at_level("DEBUG", logger="bot.code_cache"):
        code_cache.finish("unwritable")
    assert "could not be kept" in caplog.text
    assert blocker.read_text() == "not a folder"


def test_the_folder_follows_systemd_then_xdg_then_the_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CACHE_DIRECTORY", f"{tmp_path}/systemd:{tmp_path}/second")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert code_cache.cache_folder() == tmp_path / "systemd"
    monkeypatch.delenv("CACHE_DIRECTORY")
    assert code_cache.cache_folder() == tmp_path / "xdg" / "kleinstadtbot"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert code_cache.cache_folder() == tmp_path / "home" / ".cache" / "kleinstadtbot"


def test_a_write_that_fails_halfway_leaves_no_file_behind(tmp_path, monkeypatch):
    store = CompiledCode(tmp_path / "code.marshal")
    store.compile("x = 1", 0)

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(code_cache.os, "replace", full_disk)
    assert store.save() is False
    assert list(tmp_path.iterdir()) == []
