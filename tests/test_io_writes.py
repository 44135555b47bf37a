"""Every file the library writes goes through ``_io``: whole or not at all, with the mode a
plain ``open()`` under the user's umask would give."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from tale_shared._io import atomic_path, atomic_write_bytes, atomic_writer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_users_umask_not_0600(tmp_path, umask, mask, mode):
    umask(mask)
    with atomic_writer(tmp_path / "a.txt") as fh:
        fh.write("x")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    with atomic_path(tmp_path / "c.gguf") as partial:
        partial.write_bytes(b"GGUF")
    for name in ("a.txt", "b.bin", "c.gguf"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_writer_leaves_neither_the_file_nor_a_partial(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.gguf") as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("the writer died")
    assert list(tmp_path.iterdir()) == []


def test_a_saved_profile_and_a_joined_model_are_written_through_io(tmp_path, umask):
    from tale_shared.local.registry import join_parts
    from tale_shared.profiles import ModelProfile, save_profile

    umask(0o022)
    path = save_profile(ModelProfile(model="m", style="words", source="calibrated"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    parts = [tmp_path / "p1", tmp_path / "p2"]
    parts[0].write_bytes(b"ab")
    parts[1].write_bytes(b"cd")
    import hashlib

    target = join_parts(
        parts, tmp_path / "joined" / "model.gguf", hashlib.sha256(b"abcd").hexdigest()
    )
    assert target.read_bytes() == b"abcd" and stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(Exception, match="sha256"):
        join_parts(parts, tmp_path / "bad" / "model.gguf", "0" * 64)
    assert list((tmp_path / "bad").iterdir()) == []


def test_no_module_writes_a_file_behind_io_s_back():
    """``write_text``, ``write_bytes``, ``open(..., "w")`` and ``mkstemp`` appear only in
    ``_io`` (reading is fine)."""
    offenders = []
    for package in ("tale_shared", "langchain_tale", "llama_index_tale"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "_io.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in {"write_text", "write_bytes", "mkstemp", "NamedTemporaryFile"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
                if name == "open":
                    # open(path, mode) or path.open(mode)
                    positional = (
                        node.args[:1] if isinstance(func, ast.Attribute) else node.args[1:2]
                    )
                    modes = [*positional, *(k.value for k in node.keywords if k.arg == "mode")]
                    if any(
                        isinstance(m, ast.Constant)
                        and isinstance(m.value, str)
                        and set(m.value) & set("wax+")
                        for m in modes
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} open for writing")
    assert offenders == []
