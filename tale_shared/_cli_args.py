"""Argument checks every ``tale`` command shares: numbers that must be positive, and output
paths that must not be any of the command's inputs (or each other).

Each command names the arguments it reads and writes in its parser's defaults
(``reads=("data", "runs")``, ``writes=("out", "table")``); :func:`check_paths` refuses a run
in which a written path is a read one, before anything loads or is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from tale_shared._io import same_file


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1.

    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a whole number of at least 1, got '0'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def add_adapter_options(parser: argparse.ArgumentParser) -> None:
    """``--lora FILE`` (a llama.cpp LoRA adapter GGUF on a local model) and ``--no-adapter``
    (the base model); neither: the adapter tale ships for the model, if any (``args.lora`` is
    then :data:`~tale_shared.local.registry.PACKAGED_ADAPTER`)."""
    from tale_shared.local.registry import PACKAGED_ADAPTER

    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--lora",
        default=PACKAGED_ADAPTER,
        metavar="FILE",
        help="a llama.cpp LoRA adapter GGUF for a local model (tale train gguf); default: the "
        "adapter tale ships for the model, if any",
    )
    group.add_argument(
        "--no-adapter",
        dest="lora",
        action="store_const",
        const=None,
        help="the local model's base weights, without the adapter tale ships for it",
    )


def _paths(args: argparse.Namespace, names: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for name in names:
        value = getattr(args, name, None)
        values = value if isinstance(value, list) else [value]
        for one in values:
            if isinstance(one, (str, Path)) and str(one):
                yield name, str(one)


def _option(name: str) -> str:
    """How the user wrote the argument: ``--out``, or a positional's name (``runs``)."""
    return name if name in ("runs",) else f"--{name.replace('_', '-')}"


def check_paths(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` when a path the command writes (``args.writes``) names the same
    file as a path it reads (``args.reads``) or another it writes: the output would
    replace the input (an ``--out`` resumed by the command, such as a bench's rows, is
    both, and only the other outputs are checked against it)."""
    reads = list(_paths(args, tuple(getattr(args, "reads", ()))))
    writes = list(_paths(args, tuple(getattr(args, "writes", ()))))
    for i, (out_name, out_path) in enumerate(writes):
        for in_name, in_path in reads:
            if in_name == "model" and not in_path.endswith(".gguf"):
                continue  # a model name or URL, not a file
            if same_file(out_path, in_path):
                raise ValueError(
                    f"{_option(out_name)} {out_path} is the input file given as "
                    f"{_option(in_name)}: it would be replaced; choose another "
                    f"{_option(out_name)}"
                )
        for other_name, other_path in writes[i + 1 :]:
            if same_file(out_path, other_path):
                raise ValueError(
                    f"{_option(out_name)} and {_option(other_name)} are the same file "
                    f"({out_path}): one would replace the other"
                )
