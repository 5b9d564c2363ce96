"""Case `index` of seed `seed`: which source, which command, how the spec is delivered.

Every case draws from its own `random.Random(f"{seed}:{index}")`, so case 1234 of
seed 7 is the same input whatever else runs, in whichever order or process: a failure
is reproduced with `python -m tests.fuzz --seed 7 --case 1234`.

Sources (weights in PROFILES): mutations of the zoo specs; specs generated from the grammar,
plain or mutated; hostile option values on a good spec; `calc` numbers; equivalent
spellings of a spec (BOM, CRLF, tabs …) that must behave like it; and the odd ways a
spec can arrive (a directory, an endless or closed standard input).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.fuzz import corpus, grammar, mutate, options
from tests.fuzz.cases import SPEC, Case

EXPORT_MAX_PARAMS = 12_000_000  # export builds every weight in torch: ~50 MB at float32


@dataclass(frozen=True)
class Profile:
    """How often each source and command is drawn, and which zoo specs may be."""

    sources: dict[str, float]
    commands: dict[str, float]
    small: float  # the least zoo weight drawn: 0 all, 0.5 up to 80 layers (corpus.pick)
    tables: float = 1.0  # the share of `report --format table` kept (rich draws a table at ~60 ms a case)


PROFILES = {
    # the long runs: every source, the whole zoo
    "full": Profile({"zoo": 40, "grammar": 18, "grammar+mutate": 12, "option": 12, "calc": 6, "twin": 6, "io": 1.5},
                    {"report": 40, "check": 12, "rf": 12, "render": 10, "compare": 8, "export": 5, "verify": 2}, 0.0),
    # tests/test_fuzz.py: thousands of inputs a minute on 2 cores; cheap specs, fewer torch builds
    "quick": Profile({"zoo": 40, "grammar": 22, "grammar+mutate": 14, "option": 10, "calc": 6, "twin": 3, "io": 0.4},
                     {"report": 40, "check": 12, "rf": 12, "render": 10, "compare": 6, "export": 2, "verify": 1},
                     0.5, tables=0.3),
}


def make_case(seed: int, index: int, commands: tuple[str, ...], profile: str = "full") -> Case:
    rng = random.Random(f"{seed}:{index}")
    mix = PROFILES[profile]
    sources = {k: w for k, w in mix.sources.items() if k != "calc" or "calc" in commands}
    if not set(commands) - {"calc"}:
        sources = {"calc": 1}
    source = rng.choices(list(sources), weights=list(sources.values()))[0]
    return _BY_SOURCE[source](_Draw(rng, commands, mix), index)


@dataclass(frozen=True)
class _Draw:
    rng: random.Random
    commands: tuple[str, ...]
    profile: Profile


def _spec_command(draw: _Draw) -> str:
    usable = [c for c in draw.commands if c in draw.profile.commands]
    return draw.rng.choices(usable, weights=[draw.profile.commands[c] for c in usable])[0]


def _command_line(draw: _Draw, command: str, hostile: bool) -> tuple[list[str], str]:
    """options.command_line, with the profile's share of report tables (the rest as JSON or Markdown)."""
    args, odd = options.command_line(draw.rng, command, hostile)
    if draw.profile.tables < 1.0 and args[:1] == ["report"] and args[2:4] == ["--format", "table"]:
        if draw.rng.random() > draw.profile.tables:
            args[3] = draw.rng.choice(["json", "markdown"])
    return args, odd


def _via(rng: random.Random, text: str) -> str:
    """stdin mostly; a file often (the UTF-8 decoding path differs); the text as an argument
    sometimes (archcalc reads an argument holding a newline as spec text)."""
    via = rng.choices(["stdin", "file", "arg"], [70, 25, 5])[0]
    if via == "arg" and ("\n" not in text or "\x00" in text):  # no argv holds a NUL byte
        return "stdin"
    return via


def _seed_for(draw: _Draw, command: str) -> corpus.Seed:
    if command in ("export", "verify"):
        return corpus.pick(draw.rng, max(0.25, draw.profile.small), max_params=EXPORT_MAX_PARAMS)
    return corpus.pick(draw.rng, draw.profile.small)


def _zoo(draw: _Draw, index: int) -> Case:
    rng, command = draw.rng, _spec_command(draw)
    seed = _seed_for(draw, command)
    text, label = mutate.mutate(rng, seed.text)
    args, _ = _command_line(draw, command, False)
    return Case(index, args, text, _via(rng, text), "spec", f"zoo:{seed.name} {label}", seed_spec=seed.name)


def _grammar(draw: _Draw, index: int) -> Case:
    rng, command = draw.rng, _spec_command(draw)
    text = grammar.spec(rng)
    args, _ = _command_line(draw, command, False)
    return Case(index, args, text, _via(rng, text), "spec", "grammar")


def _grammar_mutated(draw: _Draw, index: int) -> Case:
    case = _grammar(draw, index)
    text, label = mutate.mutate(draw.rng, case.spec or "", bomb_rate=0.2)
    case.spec, case.origin, case.via = text, f"grammar {label}", _via(draw.rng, text)
    return case


def _option(draw: _Draw, index: int) -> Case:
    """A good spec (a small zoo one or a generated one) with hostile option values."""
    rng, command = draw.rng, _spec_command(draw)
    if rng.random() < 0.6:
        seed = _seed_for(draw, command)
        text, origin = seed.text, f"zoo:{seed.name}"
    else:
        text, origin = grammar.spec(rng), "grammar"
    args, odd = _command_line(draw, command, True)
    return Case(index, args, text, rng.choice(["stdin", "file"]), "option", f"{origin} option {odd}")


def _calc(draw: _Draw, index: int) -> Case:
    args, odd = options.command_line(draw.rng, "calc", hostile=draw.rng.random() < 0.75)
    return Case(index, args, None, "stdin", "option" if odd else "spec", f"calc {odd}".strip())


def _twin(draw: _Draw, index: int) -> Case:
    """An equivalent spelling of a spec: it must exit as the original does."""
    rng, command = draw.rng, _spec_command(draw)
    seed = _seed_for(draw, command) if rng.random() < 0.6 else None
    original = seed.text if seed else grammar.spec(rng)
    text, label = mutate.equivalent(rng, original)
    args, _ = _command_line(draw, command, False)
    return Case(index, args, text, rng.choice(["stdin", "file"]), "spec", f"equivalent {label}", twin=original,
                seed_spec=seed.name if seed else None)  # a zoo spec's own time is its baseline (worker.run)


def _io(draw: _Draw, index: int) -> Case:
    """A directory as SPEC, an endless or closed stdin (1 in 8: it starts a real process), or
    a spec saved in another encoding."""
    rng, command = draw.rng, _spec_command(draw)
    args, _ = _command_line(draw, command, False)
    via = rng.choices(["dir", "zeros", "closed", "file"], [3, 2, 1, 2])[0]
    text = None
    if via == "file":
        seed = corpus.pick(rng, 0.5)
        text = seed.text.encode(rng.choice(["latin-1", "utf-16", "cp1252"]), "replace").decode(
            "utf-8", "surrogateescape")
    return Case(index, args, text, via, "io", f"io {via}")


_BY_SOURCE = {"zoo": _zoo, "grammar": _grammar, "grammar+mutate": _grammar_mutated, "option": _option,
              "calc": _calc, "twin": _twin, "io": _io}

__all__ = ["SPEC", "make_case"]
