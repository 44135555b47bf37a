"""CLI commands for research workflows (search, training, calibration, export, plots)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the research commands to the ``tale`` parser."""
