"""Checks, once per build, that the installed llama.cpp runs on this CPU.

llama-cpp-python builds llama.cpp from source with ``-march=native``. On CPUs with Intel AMX
(Sapphire Rapids and later: most current cloud instances) that compiles ggml's AMX kernels in,
and llama.cpp 0.3.x runs AMX tile instructions on worker threads that Linux has not given the
tile state (XFD), so the process dies with ``SIGILL`` — "Illegal instruction", no traceback —
on the first token. tale's installer (``scripts/install.sh``) builds with
:data:`SAFE_BUILD_FLAGS` (every other native instruction set kept, AMX left out). For a build
tale did not make, :func:`check_native_runtime` runs the model once in a child process before
the model is loaded in this one: a child killed by a signal is reported with its cause and
the exact reinstall command, instead of the user's process dying. The result is cached per
build, CPU and model file, so the probe costs a few seconds once.

Set ``TALE_NATIVE_PROBE=0`` to skip it.

Example:
    >>> "-mno-amx-int8" in SAFE_BUILD_FLAGS
    True
    >>> print(reinstall_command("0.3.36", python="python"))  # doctest: +NORMALIZE_WHITESPACE
    CMAKE_ARGS="-DGGML_NATIVE=ON" CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    CXXFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" python -m pip install
    --force-reinstall --no-cache-dir --no-deps "llama-cpp-python==0.3.36"
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tale_shared._io import atomic_writer
from tale_shared.local.registry import LocalModelError, cache_dir

SAFE_BUILD_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
"""Compiler flags tale builds llama.cpp with on x86-64: ``-march=native`` stays (AVX-512,
AVX2, VNNI... where the CPU has them), the AMX instruction sets are switched off, so ggml's AMX
kernels (``#if defined(__AMX_INT8__)``) are not compiled. Explicit ``-mno-*`` flags win over
``-march=native`` in GCC and Clang whatever their order."""

PROBE_TIMEOUT_S = 300.0
PROBE_ENV = "TALE_NATIVE_PROBE"

# The child: load the model, evaluate a prompt of ~200 tokens in one batch (the batched matrix
# kernels, where ggml's AMX path runs; a question with tale's exemplars is ~550), then
# generate two tokens (the path of every later call). Prints "ok" when it lived.
_PROBE_SCRIPT = """
import sys
import llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_batch=512,
                      n_threads=int(sys.argv[2]), verbose=False)
llm.create_completion("The numbers one two three four five six seven eight nine ten " * 15,
                      max_tokens=2, temperature=0.0)
print("ok")
"""


class NativeRuntimeError(LocalModelError):
    """The installed llama.cpp crashes on this CPU; the message says why and how to fix it."""


@dataclass(frozen=True)
class ProbeResult:
    """How the child process ended: ``ok``, killed by ``signal``, or failed otherwise."""

    ok: bool
    signal: int | None = None
    detail: str = ""


def reinstall_command(version: str, *, python: str | None = None) -> str:
    """The command that rebuilds llama-cpp-python ``version`` without the AMX kernels, in the
    environment of ``python`` (this interpreter by default), bypassing pip's wheel cache."""
    exe = python or sys.executable
    return (
        f'CMAKE_ARGS="-DGGML_NATIVE=ON" CFLAGS="{SAFE_BUILD_FLAGS}" '
        f'CXXFLAGS="{SAFE_BUILD_FLAGS}" {exe} -m pip install --force-reinstall --no-cache-dir '
        f'--no-deps "llama-cpp-python=={version}"'
    )


def run_probe(
    model_path: str | Path,
    *,
    n_threads: int = 2,
    script: str = _PROBE_SCRIPT,
    timeout_s: float = PROBE_TIMEOUT_S,
    python: str | None = None,
) -> ProbeResult:
    """Run ``script`` (the model probe by default) in a child Python with ``model_path`` and
    ``n_threads`` as arguments; how it ended."""
    command: Sequence[str] = [
        python or sys.executable,
        "-c",
        script,
        str(model_path),
        str(max(n_threads, 2)),  # the AMX fault is on worker threads: run at least one
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeResult(ok=False, detail=f"the probe did not finish in {timeout_s:.0f} s")
    if done.returncode < 0:
        return ProbeResult(ok=False, signal=-done.returncode, detail=done.stderr[-500:])
    if done.returncode == 0 and done.stdout.strip().endswith("ok"):
        return ProbeResult(ok=True)
    return ProbeResult(ok=False, detail=(done.stderr or done.stdout)[-500:])


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_key(model_path: str | Path) -> str:
    """What a probe result holds for: the llama-cpp-python version and its native libraries
    (size and modification time), this CPU's instruction sets, and the model file."""
    import llama_cpp

    parts = [getattr(llama_cpp, "__version__", "?"), _cpu_flags()]
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    for lib in sorted(lib_dir.glob("*")) if lib_dir.is_dir() else []:
        st = lib.stat()
        parts.append(f"{lib.name}:{st.st_size}:{st.st_mtime_ns}")
    model = Path(model_path)
    parts.append(f"{model.resolve()}:{model.stat().st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def probe_cache_path() -> Path:
    """``$TALE_PROBE_CACHE``, else ``native-probe.json`` in tale's cache folder."""
    override = os.environ.get("TALE_PROBE_CACHE")
    return Path(override) if override else cache_dir() / "native-probe.json"


_CHECKED: set[str] = set()
_LOCK = threading.Lock()


def _read_cache(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def crash_message(result: ProbeResult, version: str) -> str:
    """The explanation a user gets for a build that dies on this CPU."""
    if result.signal == signal.SIGILL:
        cause = (
            "died of SIGILL (illegal instruction): it was built with instructions this CPU "
            "or kernel does not allow. On Intel CPUs with AMX (Sapphire Rapids and later) "
            "that is ggml's AMX kernels, compiled in by -march=native and run on threads "
            "without the AMX tile permission (a llama.cpp bug)"
        )
    else:
        name = signal.Signals(result.signal).name if result.signal else "a signal"
        cause = f"was killed by {name} while running a model"
    return (
        f"llama-cpp-python {version} {cause}. tale ran it in a child process so that this "
        f"one did not die. Rebuild it without the AMX kernels (every other instruction set "
        f"of this CPU is kept):\n\n    {reinstall_command(version)}\n\n"
        f"(or run tale's scripts/install.sh; set {PROBE_ENV}=0 to skip this check)"
    )


def check_native_runtime(model_path: str | Path, *, n_threads: int = 2) -> None:
    """Probe the installed llama.cpp with ``model_path`` in a child process, once per build
    (see :func:`build_key`); raise :class:`NativeRuntimeError` if the child was killed by a
    signal. A probe that fails for another reason (a model llama.cpp cannot read, a timeout)
    is not cached and does not raise: loading in this process then reports it."""
    if os.environ.get(PROBE_ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    import llama_cpp

    version = getattr(llama_cpp, "__version__", "unknown")
    key = build_key(model_path)
    with _LOCK:
        if key in _CHECKED:
            return
        path = probe_cache_path()
        cached = _read_cache(path).get(key)
        if cached is None:
            result = run_probe(model_path, n_threads=n_threads)
            if not result.ok and result.signal is None:
                return  # not the build's fault: not cached, the real load says what is wrong
            entries = _read_cache(path)
            entries[key] = {"ok": result.ok, "signal": result.signal, "version": version}
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_writer(path) as fh:
                    json.dump(entries, fh, indent=1)
            except OSError:
                pass  # a read-only cache only costs a probe next time
            cached = entries[key]
        if cached.get("ok"):
            _CHECKED.add(key)
            return
        sig = cached.get("signal")
        raise NativeRuntimeError(
            crash_message(
                ProbeResult(ok=False, signal=sig if isinstance(sig, int) else None), version
            )
        )
