"""MkDocs hook: the benchmark plots live in ``benchmarks/results/`` beside the rows that
made them; the site serves them under ``results/`` without copying them into ``docs/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files


def on_files(files: Files, config: Any) -> Files:
    results = Path(config["config_file_path"]).parent / "benchmarks"
    for plot in sorted((results / "results").glob("*.png")):
        files.append(
            File(
                f"results/{plot.name}",
                str(results),
                config["site_dir"],
                config["use_directory_urls"],
            )
        )
    return files
