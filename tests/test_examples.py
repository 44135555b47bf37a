"""The examples run as a user runs them, on the real embedded model (no API key set): each
finishes, prints its answer and its cost line, and ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HAS_LLAMA

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        not HAS_LLAMA and not os.environ.get("TALE_REQUIRE_REAL_MODEL"),
        reason="needs tale-reasoning[local]",
    ),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_each_example_runs_on_the_embedded_model(example, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    run = subprocess.run(
        [sys.executable, str(example)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,  # what an example writes (tale_costs.csv...) stays out of the checkout
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip()
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr
