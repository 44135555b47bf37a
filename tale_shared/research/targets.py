"""Targets a method must meet against a baseline, and the check of each (held-out reports).

An issue states what a shipped default must reach on a set — an output-token ratio, an
accuracy difference and the lower end of its paired interval, a cost ratio, a seconds ratio —
and a report checks the measured :class:`~tale_shared.research.bench.MethodSummary` against
it. The seconds ratio is passed in, because only the report knows whether the seconds it
compares were measured in the same sitting.

>>> from tale_shared.research.bench import MethodSummary
>>> s = MethodSummary(method="m", n=100, accuracy=0.7, diff=-0.01, diff_low=-0.06,
...                   diff_high=0.04, output_tokens=90.0, input_tokens=80.0,
...                   evaluated_input_tokens=80.0, cost_per_1k=0.1, calls=1.0, cut_rate=0.0,
...                   median_seconds=3.0, output_ratio=0.4, cost_ratio=0.45, time_ratio=None,
...                   baseline="vanilla")
>>> for check in check_targets(s, Targets(0.45, -0.01, min_low=-0.05)):
...     print(check.line())
output 0.40x (target <= 0.45x): yes
accuracy -1.0 (target >= -1 pts): yes
CI low -6.0 (target > -5 pts): **no**
"""

from __future__ import annotations

from dataclasses import dataclass

from tale_shared.research.bench import MethodSummary

EPS = 1e-9
"""Differences are counts over n items: compare them without floating-point dust."""


@dataclass(frozen=True)
class Targets:
    """What a method must reach on one set against the baseline (ratios as fractions, accuracy
    differences in fractions of a point: ``-0.01`` is one point); ``None``: no such target."""

    max_output_ratio: float
    min_diff: float
    min_low: float | None = None
    max_cost_ratio: float | None = None
    max_time_ratio: float | None = None


@dataclass(frozen=True)
class TargetCheck:
    """One target checked: what is measured, the limit, the measured value and whether it was
    met (``None``: not measured yet); ``note`` says where the value came from."""

    what: str
    limit: str
    value: str
    met: bool | None
    note: str = ""

    @property
    def target(self) -> str:
        """``"output <= 0.45x"``: a table header."""
        return f"{self.what} {self.limit}"

    def mark(self) -> str:
        return "not measured yet" if self.met is None else "yes" if self.met else "**no**"

    def cell(self) -> str:
        """The value and its mark, under a header that names the target."""
        return self.mark() if self.met is None else f"{self.value}: {self.mark()}"

    def line(self) -> str:
        """``"output 0.40x (target <= 0.45x): yes"``."""
        if self.met is None:
            return f"{self.what} (target {self.limit}): {self.mark()}"
        note = f", {self.note}" if self.note else ""
        return f"{self.what} {self.value} (target {self.limit}{note}): {self.mark()}"


def check_targets(
    s: MethodSummary, t: Targets, *, time_ratio: float | None = None, time_note: str = ""
) -> list[TargetCheck]:
    """Each of ``t``'s targets checked on ``s``. ``time_ratio``: the seconds ratio to check
    against ``max_time_ratio`` (``None``: not measured yet); ``time_note`` says where it came
    from (e.g. ``"n=60, same sitting"``)."""
    output = s.output_ratio or 9
    out = [
        TargetCheck(
            "output", f"<= {t.max_output_ratio:.2f}x", f"{output:.2f}x",
            output <= t.max_output_ratio + EPS,
        ),
        TargetCheck(
            "accuracy", f">= {100 * t.min_diff:+.0f} pts", f"{100 * s.diff:+.1f}",
            s.diff >= t.min_diff - EPS,
        ),
    ]  # fmt: skip
    if t.min_low is not None:
        out.append(
            TargetCheck(
                "CI low", f"> {100 * t.min_low:+.0f} pts", f"{100 * s.diff_low:+.1f}",
                s.diff_low > t.min_low,
            )
        )  # fmt: skip
    if t.max_cost_ratio is not None:
        cost = s.cost_ratio or 9
        out.append(
            TargetCheck(
                "cost", f"<= {t.max_cost_ratio:.2f}x", f"{cost:.2f}x",
                cost <= t.max_cost_ratio + EPS,
            )
        )  # fmt: skip
    if t.max_time_ratio is not None:
        out.append(
            TargetCheck(
                "median s", f"<= {t.max_time_ratio:.2f}x", f"{time_ratio or 0:.2f}x",
                None if time_ratio is None else time_ratio <= t.max_time_ratio + EPS,
                note=time_note,
            )
        )  # fmt: skip
    return out


__all__ = ["TargetCheck", "Targets", "check_targets"]
