"""Shrink a failing case to a small one with the same signature (delta debugging).

The passes, repeated while one of them makes progress and the budget lasts:

1. options: drop each optional argument (an option with its value) that the failure
   does not need;
2. lines: ddmin (Zeller's delta debugging, complements only), which removes chunks of
   halving size (a 3,000-level nesting shrinks to the depth that still fails);
3. runs: the longest repeated units (`'1+'` × 10,000, 20,000 spaces) are cut to the
   fewest repetitions that still fail, by bisection (a few probes even for 10⁵);
   then ddmin over the tokens of each line;
4. argument values get passes 2 and 3 too (a 5,000-digit `--input` becomes 4,301 digits).

A probe is one run in a worker; results are cached. The budget (probes and seconds)
bounds the time a hang's minimisation costs, since every probe that still hangs takes
the full limit; what the budget leaves is reported as not proven minimal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fuzz.cases import SPEC, Case

FLAGS = {"--explain", "--torch", "--no-bias", "--ceil", "--layers"}
_TOKENS = re.compile(r"\s+|\w+|.", re.DOTALL)
_RUN = re.compile(r"(.{1,30}?)\1{7,}", re.DOTALL)
MAX_RUNS = 6  # a deep nesting has a run of spaces on every line: bisect the longest only


@dataclass
class Budget:
    probes: int
    seconds: float
    started: float = field(default_factory=time.monotonic)
    used: int = 0

    def spent(self) -> bool:
        return self.used >= self.probes or time.monotonic() - self.started > self.seconds


class Spent(Exception):
    """The budget ran out: the search stops where it is (ddmin's loops would go on building
    complements of a million tokens without probing them)."""


class Shrinker:
    def __init__(self, signature: str, probe: Callable[[Case], str], budget: Budget, case: Case) -> None:
        self.signature, self.probe, self.budget = signature, probe, budget
        self.cache: dict[tuple[tuple[str, ...], int], bool] = {}
        self.best = case  # the smallest case seen to fail with the signature

    def fails(self, case: Case) -> bool:
        key = (tuple(case.args), hash(case.spec))
        if key not in self.cache:
            if self.budget.spent():
                raise Spent()
            self.budget.used += 1
            self.cache[key] = self.probe(case) == self.signature
            if self.cache[key] and case.size() < self.best.size():
                self.best = case
        return self.cache[key]

    def shrink(self) -> Case:
        try:
            case = self.best
            while True:
                before = case.size()
                case = self._options(case)
                if case.spec:
                    case = case.with_spec(self._text(case.spec, case.with_spec))
                case = self._values(case)
                if case.size() >= before:
                    return case
        except Spent:
            return self.best

    def _text(self, text: str, make: Callable[[str], Case]) -> str:
        lines = ddmin(text.splitlines(keepends=True), lambda ls: self.fails(make("".join(ls))))
        lines = self._runs("".join(lines), make).splitlines(keepends=True)
        for i in range(len(lines)):
            head, tail = "".join(lines[:i]), "".join(lines[i + 1 :])
            tokens = ddmin(_TOKENS.findall(lines[i]), lambda ts, h=head, t=tail: self.fails(make(h + "".join(ts) + t)))
            lines[i] = "".join(tokens)
        return "".join(lines)

    def _runs(self, text: str, make: Callable[[str], Case]) -> str:
        """The longest runs of a repeated unit, each bisected to the fewest repetitions that fail."""
        for m in sorted(_RUN.finditer(text), key=lambda m: -len(m.group(0)))[:MAX_RUNS]:
            start = text.find(m.group(0))
            if start >= 0:
                unit = m.group(1)
                text = self._bisect(text[:start], unit, len(m.group(0)) // len(unit), text[start + len(m.group(0)):],
                                    make)
        return text

    def _bisect(self, before: str, unit: str, count: int, after: str, make: Callable[[str], Case]) -> str:
        lo, hi = 0, count  # `count` repetitions fail; find the fewest that do
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if self.fails(make(before + unit * mid + after)):
                hi = mid
            else:
                lo = mid
        return before + unit * hi + after

    def _options(self, case: Case) -> Case:
        groups = option_groups(case.args)
        i = 1
        while i < len(groups):
            if SPEC in groups[i]:
                i += 1
                continue
            trial = [w for j, g in enumerate(groups) if j != i for w in g]
            if self.fails(case.with_args(trial)):
                groups.pop(i)
            else:
                i += 1
        return case.with_args([w for g in groups for w in g])

    def _values(self, case: Case) -> Case:
        args = list(case.args)
        for i, value in enumerate(args):
            if len(value) < 8 or value == SPEC:
                continue

            def make(v: str, i: int = i) -> Case:
                return case.with_args(args[:i] + [v] + args[i + 1 :])

            args[i] = self._text(value, make) if self.fails(make(value)) else value
        return case.with_args(args)


def option_groups(args: list[str]) -> list[list[str]]:
    """The command words (`report`, `calc conv`) first, then each option with its value, each
    flag and each other word in its own group; the spec argument is never dropped."""
    width = 2 if args[:1] == ["calc"] else 1
    groups: list[list[str]] = [args[:width]]
    i = width
    while i < len(args):
        word = args[i]
        takes_value = word.startswith("-") and word != "-" and word not in FLAGS and not _is_number(word)
        group = args[i : i + 2] if takes_value else [word]
        groups.append(group)
        i += len(group)
    return groups


def _is_number(word: str) -> bool:
    return bool(re.fullmatch(r"-\d+", word))


def ddmin(items: list[str], fails: Callable[[list[str]], bool]) -> list[str]:
    """The delta-debugging loop over complements: drop chunks while the failure stays."""
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for k in range(len(chunks)):
            rest = [x for j, c in enumerate(chunks) if j != k for x in c]
            if fails(rest):
                items, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    if len(items) == 1 and fails([]):
        return []
    return items


def minimize(case: Case, signature: str, probe: Callable[[Case], str], probes: int = 400,
             seconds: float = 60.0) -> tuple[Case, dict[str, object]]:
    """The smallest case found with `signature`, and how the search went."""
    budget = Budget(probes, seconds)
    small = Shrinker(signature, probe, budget, case).shrink()
    return small, {"probes": budget.used, "seconds": round(time.monotonic() - budget.started, 1),
                   "exhausted": budget.spent(), "from_size": case.size(), "to_size": small.size()}
