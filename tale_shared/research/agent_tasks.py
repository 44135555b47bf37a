"""Agent tasks whose answers need the tools: look-ups in a catalogue, retrieval over documents.

The GSM8K/SVAMP agent runs are *tool optional*: a model can do the arithmetic itself, so the
loop may never loop. Here every number a task needs is only known to a tool:

- ``catalogue``: prices of made-up products from ``lookup_price`` (a structured source, like
  an API), then arithmetic with ``calculator``;
- ``documents``: facts about made-up towns from ``search_documents`` (keyword retrieval over
  the document set shipped in ``tale_shared/data/agent-towns.json``), then arithmetic.

Each task needs 2-4 tool calls. Tasks are generated from **templates** with seeded values,
and the templates are split: ``dev`` templates are for choosing (prompts, levers, defaults),
``heldout`` templates are only reported, so nothing is tuned on the shape of the evaluation
tasks. Every task carries its tools by name; :func:`task_tools` gives their specs, which
each framework's runner wraps as its own tools.

Example:
    >>> tasks = generate_tasks("dev", per_template=2, seed=1)
    >>> sorted({t.family for t in tasks}), len(tasks) == 2 * len(templates("dev"))
    (['catalogue', 'documents'], True)
    >>> t = tasks[0]; t.tools
    ('lookup_price', 'calculator')
    >>> lookup_price(CATALOGUE[0].name).startswith(CATALOGUE[0].name)
    True
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from tale_shared.calculator import calculate
from tale_shared.research.datasets import Item
from tale_shared.tool_demo import ANSWER_TOOL, ToolCall, ToolDemo

Split = Literal["dev", "heldout"]

TOOL_SYSTEM_PROMPT = (
    "You answer questions with the tools you have. The facts a question needs (prices, "
    "numbers about places) are only known to the tools: look each one up, never guess it. "
    "Use the calculator for the arithmetic. When you know the result, reply with the final "
    "answer as a number in double brackets, e.g. [[42]]."
)
"""The agent's system prompt for tool-necessary tasks, in every configuration and framework
(with the answer tool: :func:`tool_system_prompt`)."""


def tool_system_prompt(*, answer_tool: bool = False) -> str:
    """:data:`TOOL_SYSTEM_PROMPT`, or — when the final answer is a call to the answer tool —
    the same words ending in that tool's name instead of the ``[[answer]]`` form."""
    if not answer_tool:
        return TOOL_SYSTEM_PROMPT
    head = TOOL_SYSTEM_PROMPT.split(" When you know the result")[0]
    return f"{head} When you know the result, give it with the {ANSWER_TOOL} tool."


# -- the sources ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Product:
    name: str
    price: Decimal


def _make_catalogue(seed: int = 40, size: int = 36) -> tuple[Product, ...]:
    """Made-up products (no model can know their prices), prices in quarters of a dollar."""
    rng = random.Random(seed)
    first = ["Zor", "Quil", "Brem", "Tav", "Oska", "Vel", "Drun", "Pim", "Yar", "Kesh", "Lum"]
    second = ["vex", "bit", "dora", "lin", "mo", "rax", "tul", "sen", "wick", "gal"]
    things = ["lamp", "kettle", "notebook", "scarf", "mug", "candle", "backpack", "clock",
              "pillow", "umbrella", "basket", "teapot"]  # fmt: skip
    names: set[str] = set()
    out: list[Product] = []
    while len(out) < size:
        name = f"{rng.choice(first)}{rng.choice(second)} {rng.choice(things)}"
        if name in names or any(name.split()[0] == n.split()[0] for n in names):
            continue  # a brand names one product, so a look-up is never ambiguous
        names.add(name)
        out.append(Product(name, Decimal(rng.randint(8, 160)) / 4))
    return tuple(out)


CATALOGUE = _make_catalogue()


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01'))}"


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).strip()


def lookup_price(product: str) -> str:
    """The price of one product in the shop's catalogue, by its name (e.g. 'Zorvex lamp')."""
    asked = _normal(product)
    asked_words = set(asked.split())
    for item in CATALOGUE:
        brand = _normal(item.name).split()[0]
        if brand in asked_words or _normal(item.name) in asked or brand in asked:
            return f"{item.name}: {_money(item.price)} each"
    return f"no product in the catalogue matches {product!r}; ask for one product by its name"


@dataclass(frozen=True)
class Town:
    name: str
    residents: int
    schools: int
    library_year: int
    bridges: int

    @property
    def text(self) -> str:
        return (
            f"{self.name} is a town on the river Ostra. It has {self.residents} residents "
            f"and {self.schools} schools. Its public library opened in {self.library_year}, "
            f"and {self.bridges} bridges cross the river there."
        )


def _towns_file() -> Path:
    return Path(str(resources.files("tale_shared") / "data" / "agent-towns.json"))


@lru_cache(maxsize=1)
def towns() -> tuple[Town, ...]:
    """The document set: one short document per made-up town (shipped in the package)."""
    rows = json.loads(_towns_file().read_text(encoding="utf-8"))
    return tuple(Town(**row) for row in rows)


def make_towns(seed: int = 41, size: int = 30) -> list[Town]:
    """How ``agent-towns.json`` was made (``tale_shared/data/README.md``)."""
    rng = random.Random(seed)
    starts = ["Bren", "Ost", "Kal", "Mer", "Thal", "Varn", "Eld", "Gor", "Hild", "Lis", "Norv",
              "Pell", "Rask", "Sund", "Tor", "Ulm", "Wend", "Yst"]  # fmt: skip
    ends = ["moor", "havn", "by", "dale", "stad", "wick", "holm", "ford", "mere", "vik"]
    names: set[str] = set()
    out: list[Town] = []
    while len(out) < size:
        name = rng.choice(starts) + rng.choice(ends)
        if name in names:
            continue
        names.add(name)
        out.append(
            Town(
                name=name,
                residents=rng.randint(800, 9800),
                schools=rng.randint(2, 19),
                library_year=rng.randint(1890, 1995),
                bridges=rng.randint(1, 9),
            )
        )
    return out


_STOP = {"the", "a", "an", "of", "in", "is", "how", "many", "what", "does", "do", "there",
         "town", "and", "has", "have", "to", "for", "on", "at"}  # fmt: skip


def search_documents(query: str) -> str:
    """Search the town documents; returns the two that share most words with the query."""
    words = set(_normal(query).split()) - _STOP
    scored = []
    for town in towns():
        doc = set(_normal(town.text).split())
        name_hit = 3 if _normal(town.name) in words else 0
        scored.append((len(words & doc) + name_hit, town.text))
    scored.sort(key=lambda pair: -pair[0])
    hits = [text for score, text in scored[:2] if score > 0]
    return "\n\n".join(hits) if hits else "no document matches the query"


# -- tools --------------------------------------------------------------------------------------
CALCULATOR_DESCRIPTION = (
    "Evaluate an arithmetic expression with numbers, + - * / ( ) and ** "
    "(for example '(12.5 + 7.5) * 3'). Returns the value, or an error to fix."
)


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the core knows it: each framework's runner wraps it as its own tool."""

    name: str
    description: str
    function: Callable[[str], str]


TOOLS: dict[str, ToolSpec] = {
    "calculator": ToolSpec("calculator", CALCULATOR_DESCRIPTION, calculate),
    "lookup_price": ToolSpec(
        "lookup_price",
        "Look up the price of one product in the shop's catalogue by its name, for example "
        "'Zorvex lamp'. Returns the price of one item.",
        lookup_price,
    ),
    "search_documents": ToolSpec(
        "search_documents",
        "Search the documents about the towns on the river Ostra, for example "
        "'Brenmoor residents'. Returns the best-matching documents.",
        search_documents,
    ),
}


def task_tools(names: tuple[str, ...] = ("calculator",)) -> list[ToolSpec]:
    """The specs of a task's tools, in its order (default: the calculator alone, the tool of
    the tool-optional runs)."""
    return [TOOLS[name] for name in names]


# -- tasks --------------------------------------------------------------------------------------
class AgentTask(Item):
    """An item whose answer needs tool results; ``tools`` names what the agent gets."""

    family: str
    template: str
    split: str
    tools: tuple[str, ...]
    min_tool_calls: int


@dataclass(frozen=True)
class Template:
    name: str
    family: Literal["catalogue", "documents"]
    split: Split
    make: Callable[[random.Random], tuple[str, Decimal | int]]
    min_tool_calls: int


def _products(rng: random.Random, k: int) -> list[Product]:
    return rng.sample(list(CATALOGUE), k)


def _buy_two(rng: random.Random) -> tuple[str, Decimal]:
    a, b = _products(rng, 2)
    n, m = rng.randint(2, 6), rng.randint(2, 6)
    q = f"Mia buys {n} {a.name}s and {m} {b.name}s. How many dollars does she pay in all?"
    return q, n * a.price + m * b.price


def _price_gap(rng: random.Random) -> tuple[str, Decimal]:
    a, b = sorted(_products(rng, 2), key=lambda p: -p.price)
    q = f"How many dollars more does one {a.name} cost than one {b.name}?"
    return q, a.price - b.price


def _change(rng: random.Random) -> tuple[str, Decimal]:
    (a,) = _products(rng, 1)
    n = rng.randint(2, 5)
    cash = Decimal((int(n * a.price) // 10 + 2) * 10)
    q = f"Sam pays for {n} {a.name}s with ${cash}. How many dollars of change does he get?"
    return q, cash - n * a.price


def _buy_three(rng: random.Random) -> tuple[str, Decimal]:
    a, b, c = _products(rng, 3)
    n = rng.randint(2, 4)
    q = (
        f"Lena puts one {a.name}, one {b.name} and {n} {c.name}s in her basket. "
        "What is the total in dollars?"
    )
    return q, a.price + b.price + n * c.price


def _discount(rng: random.Random) -> tuple[str, Decimal]:
    (a,) = _products(rng, 1)
    pct, n = rng.choice([10, 20, 25, 50]), rng.randint(2, 8)
    q = f"The {a.name} is {pct}% off today. How many dollars do {n} of them cost today?"
    return q, n * a.price * (100 - pct) / 100


def _two_stores(rng: random.Random) -> tuple[str, Decimal]:
    a, b = _products(rng, 2)
    n = rng.randint(3, 9)
    q = (
        f"A school orders {n} {a.name}s and twice as many {b.name}s. "
        "How many dollars does the order cost?"
    )
    return q, n * a.price + 2 * n * b.price


def _pick_towns(rng: random.Random, k: int) -> list[Town]:
    return rng.sample(list(towns()), k)


def _more_residents(rng: random.Random) -> tuple[str, int]:
    a, b = sorted(_pick_towns(rng, 2), key=lambda t: -t.residents)
    return f"How many more residents does {a.name} have than {b.name}?", a.residents - b.residents


def _schools_together(rng: random.Random) -> tuple[str, int]:
    a, b = _pick_towns(rng, 2)
    return f"How many schools do {a.name} and {b.name} have together?", a.schools + b.schools


def _library_gap(rng: random.Random) -> tuple[str, int]:
    a, b = sorted(_pick_towns(rng, 2), key=lambda t: t.library_year)
    while a.library_year == b.library_year:
        a, b = sorted(_pick_towns(rng, 2), key=lambda t: t.library_year)
    q = f"How many years after the library of {a.name} opened did the library of {b.name} open?"
    return q, b.library_year - a.library_year


def _bridges_three(rng: random.Random) -> tuple[str, int]:
    a, b, c = _pick_towns(rng, 3)
    q = f"How many bridges are there in {a.name}, {b.name} and {c.name} altogether?"
    return q, a.bridges + b.bridges + c.bridges


def _grown_residents(rng: random.Random) -> tuple[str, int]:
    (a,) = _pick_towns(rng, 1)
    moved = rng.choice([100, 250, 500, 750])
    q = (
        f"If the number of residents of {a.name} doubled and then {moved} of them moved away, "
        "how many residents would it have?"
    )
    return q, 2 * a.residents - moved


# Templates added in the second round (see ``_TEMPLATES``): two-step arithmetic on the looked-up
# values, in shapes unlike the worked examples.
def _gift_boxes(rng: random.Random) -> tuple[str, Decimal]:
    a, b = _products(rng, 2)
    k, n = rng.randint(2, 4), rng.randint(2, 5)
    q = f"A gift box holds one {a.name} and {k} {b.name}s. How many dollars do {n} gift boxes cost?"
    return q, n * (a.price + k * b.price)


def _teachers(rng: random.Random) -> tuple[str, int]:
    a, b = _pick_towns(rng, 2)
    k = rng.randint(3, 12)
    q = (
        f"Every school in {a.name} and in {b.name} has {k} teachers. "
        "How many teachers work in the schools of the two towns?"
    )
    return q, k * (a.schools + b.schools)


def _library_age(rng: random.Random) -> tuple[str, int]:
    (a,) = _pick_towns(rng, 1)
    year = rng.randint(2030, 2060)
    return f"How many years old will the public library of {a.name} be in {year}?", (
        year - a.library_year
    )


def _refund(rng: random.Random) -> tuple[str, Decimal]:
    a, b = _products(rng, 2)
    n = rng.randint(3, 7)
    m = rng.randint(1, n - 1)
    q = (
        f"Omar bought {n} {a.name}s and one {b.name}, then returned {m} of the {a.name}s "
        "for a full refund. How many dollars did he spend in the end?"
    )
    return q, (n - m) * a.price + b.price


def _price_rise(rng: random.Random) -> tuple[str, Decimal]:
    (a,) = _products(rng, 1)
    rise, n = Decimal(rng.choice([1, 2, 3, 5])) / 2, rng.randint(2, 9)
    q = (
        f"The price of the {a.name} goes up by {_money(rise)} tomorrow. "
        f"How many dollars will {n} of them cost tomorrow?"
    )
    return q, n * (a.price + rise)


def _bridge_lamps(rng: random.Random) -> tuple[str, int]:
    a, b = _pick_towns(rng, 2)
    k, j = rng.sample(range(2, 9), 2)
    q = (
        f"Each bridge in {a.name} gets {k} new lamps and each bridge in {b.name} gets {j}. "
        "How many new lamps is that in all?"
    )
    return q, k * a.bridges + j * b.bridges


_TEMPLATES = [
    Template("buy-two", "catalogue", "dev", _buy_two, 3),
    Template("price-gap", "catalogue", "dev", _price_gap, 2),
    Template("change", "catalogue", "dev", _change, 2),
    Template("more-residents", "documents", "dev", _more_residents, 2),
    Template("schools-together", "documents", "dev", _schools_together, 2),
    Template("buy-three", "catalogue", "heldout", _buy_three, 4),
    Template("discount", "catalogue", "heldout", _discount, 2),
    Template("two-stores", "catalogue", "heldout", _two_stores, 3),
    Template("library-gap", "documents", "heldout", _library_gap, 2),
    Template("bridges-three", "documents", "heldout", _bridges_three, 3),
    Template("grown-residents", "documents", "heldout", _grown_residents, 2),
    # second round, written after the first held-out run: dev templates with two-step arithmetic
    # (the first dev templates were the worked examples' own shapes, and read 80% on dev against
    # 38% held out), and fresh held-out templates that no choice has seen
    Template("gift-boxes", "catalogue", "dev", _gift_boxes, 3),
    Template("teachers", "documents", "dev", _teachers, 3),
    Template("library-age", "documents", "dev", _library_age, 2),
    Template("refund", "catalogue", "heldout", _refund, 3),
    Template("price-rise", "catalogue", "heldout", _price_rise, 2),
    Template("bridge-lamps", "documents", "heldout", _bridge_lamps, 3),
]
FRESH_HELDOUT = ("refund", "price-rise", "bridge-lamps")
"""Held-out templates added after the first held-out run: no choice has seen their shape."""


def templates(split: Split) -> list[Template]:
    """The templates of one split (dev: to choose on; heldout: reported only)."""
    if split not in ("dev", "heldout"):
        raise ValueError(f"split must be 'dev' or 'heldout', not {split!r}")
    return [t for t in _TEMPLATES if t.split == split]


def _gold(value: Decimal | int) -> str:
    if isinstance(value, int):
        return str(value)
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return format(rounded, "f")


def generate_tasks(split: Split, *, per_template: int = 20, seed: int = 0) -> list[AgentTask]:
    """``per_template`` seeded tasks from each template of ``split``; ids name the template."""
    if per_template < 1:
        raise ValueError("per_template must be at least 1")
    tools = {"catalogue": ("lookup_price", "calculator"),
             "documents": ("search_documents", "calculator")}  # fmt: skip
    out = []
    for template in templates(split):
        rng = random.Random(f"{seed}:{template.name}")
        seen: set[str] = set()
        tries = 0
        while len(seen) < per_template:
            tries += 1
            if tries > 50 * per_template:
                raise ValueError(f"{template.name}: fewer than {per_template} distinct tasks")
            question, value = template.make(rng)
            if question in seen:
                continue
            seen.add(question)
            n = len(seen)
            out.append(
                AgentTask(
                    id=f"{template.name}-{seed}-{n:03d}",
                    question=question,
                    answer=_gold(value),
                    family=template.family,
                    template=template.name,
                    split=split,
                    tools=tools[template.family],
                    min_tool_calls=template.min_tool_calls,
                )
            )
    return out


# -- worked examples ----------------------------------------------------------------------------
# One per family, written on the shape of a *dev* template (buy-two; more-residents) with
# made-up names that are in neither source, and each tool's own output format.
DEMOS: dict[str, ToolDemo] = {
    "catalogue": ToolDemo(
        question="Tom buys 3 Flimdor cups and 2 Gastrel pens. How many dollars does he pay in all?",
        steps=(
            (
                ToolCall("lookup_price", {"product": "Flimdor cup"}, "Flimdor cup: $4.25 each"),
                ToolCall("lookup_price", {"product": "Gastrel pen"}, "Gastrel pen: $11.50 each"),
            ),
            (ToolCall("calculator", {"expression": "3 * 4.25 + 2 * 11.50"}, "35.75"),),
        ),
        answer="35.75",
    ),
    "documents": ToolDemo(
        question="How many more schools does Ardwick have than Fenmoor?",
        steps=(
            (
                ToolCall(
                    "search_documents",
                    {"query": "Ardwick schools"},
                    "Ardwick is a town on the river Ostra. It has 5210 residents and 14 schools. "
                    "Its public library opened in 1931, and 3 bridges cross the river there.",
                ),
                ToolCall(
                    "search_documents",
                    {"query": "Fenmoor schools"},
                    "Fenmoor is a town on the river Ostra. It has 2380 residents and 6 schools. "
                    "Its public library opened in 1968, and 2 bridges cross the river there.",
                ),
            ),
            (ToolCall("calculator", {"expression": "14 - 6"}, "8"),),
        ),
        answer="8",
    ),
}
"""A worked example per task family (``demo`` in an agent configuration)."""


__all__ = [
    "CALCULATOR_DESCRIPTION",
    "CATALOGUE",
    "DEMOS",
    "FRESH_HELDOUT",
    "TOOLS",
    "TOOL_SYSTEM_PROMPT",
    "AgentTask",
    "ToolSpec",
    "generate_tasks",
    "lookup_price",
    "make_towns",
    "search_documents",
    "task_tools",
    "templates",
    "tool_system_prompt",
    "towns",
]
