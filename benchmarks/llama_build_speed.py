"""What a llama-cpp-python build costs in speed: the default model on two (or more) builds.

Each build is a Python interpreter with llama-cpp-python installed (a virtual environment);
rounds alternate between the builds, each in a fresh process: load the default model, evaluate
a ~200-token prompt (prompt tokens/s), then generate ``--tokens`` tokens from the cached prompt
(generation tokens/s). Medians over the rounds and the ratio of each build to the first.

    python benchmarks/llama_build_speed.py --build safe=.venv/bin/python \\
        --build native=/tmp/native/bin/python --rounds 5 --tokens 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from tale_shared._io import atomic_writer
from tale_shared.local.registry import resolve_model_path

_CHILD = r"""
import json, os, sys, time
import llama_cpp
path, n_tokens = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=os.cpu_count(), seed=0,
                      verbose=False)
prompt = ("The history of the printing press begins with movable type in East Asia and "
          "continues through Gutenberg's workshop in Mainz. ") * 8
tokens = llm.tokenize(prompt.encode())
t0 = time.perf_counter()
llm.create_completion(prompt, max_tokens=1, temperature=0.0)
prompt_s = time.perf_counter() - t0
t0 = time.perf_counter()
out = llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0)
gen_s = time.perf_counter() - t0
made = out["usage"]["completion_tokens"]
print(json.dumps({"prompt_tokens": len(tokens), "prompt_tps": len(tokens) / prompt_s,
                  "gen_tokens": made, "gen_tps": made / gen_s,
                  "version": llama_cpp.__version__}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=PYTHON")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--out", help="also write the per-round rows here (JSON)")
    args = parser.parse_args(argv)
    builds = dict(b.split("=", 1) for b in args.build)
    _, path = resolve_model_path(args.model)
    rows: list[dict[str, object]] = []
    for r in range(args.rounds):
        for name, python in builds.items():
            env_line = (
                subprocess.run(
                    [python, "-c", _CHILD, str(path), str(args.tokens)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={"TALE_NATIVE_PROBE": "0", "PATH": "/usr/bin:/bin"},
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            row = dict(json.loads(env_line), build=name, round=r)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    first = next(iter(builds))
    med = {
        name: {
            key: statistics.median(float(str(x[key])) for x in rows if x["build"] == name)
            for key in ("prompt_tps", "gen_tps")
        }
        for name in builds
    }
    print(f"| build | generation tok/s | vs {first} | prompt tok/s | vs {first} |")
    print("|---|---|---|---|---|")
    for name, m in med.items():
        print(
            f"| {name} | {m['gen_tps']:.1f} | {m['gen_tps'] / med[first]['gen_tps']:.3f} "
            f"| {m['prompt_tps']:.1f} | {m['prompt_tps'] / med[first]['prompt_tps']:.3f} |"
        )
    print(f"\n{args.rounds} rounds, alternating builds, {args.tokens} generated tokens, medians")
    if args.out:
        with atomic_writer(args.out) as fh:
            json.dump({"rows": rows, "medians": med}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
