"""The repeated-block summary (archcalc/repeats.py, `archcalc report --totals`): every figure it carries
to a repeat's count equals the expanded analysis's, figure by figure, for every built-in spec and for
generated repeat specs; a million-layer spec written as repeats costs a few hundred nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import repeats
from archcalc.cli import cli
from archcalc.passes.analysis import analyze
from archcalc.passes.figures import FIGURES
from archcalc.passes.memory import MemoryOptions
from archcalc.passes.training import TrainingOptions
from archcalc.report.formats import to_dict
from archcalc.zoo import read

SPECS = Path(__file__).resolve().parent.parent / "specs"
ZOO = sorted(p.relative_to(SPECS).as_posix() for p in [*SPECS.glob("*.arch"), *SPECS.glob("examples/*.arch")])


def document(analysis: Any) -> dict[str, Any]:
    return to_dict(analysis, layers=[])


def both(text: str, depth: int | None = 1, analyse: Any = analyze, **options: Any
         ) -> tuple[repeats.Summary, repeats.Summary]:
    summary = repeats.summarize_text(text, "<spec>", analyse, document, depth=depth, **options)
    expanded = repeats.summarize_text(text, "<spec>", analyse, document, depth=depth, summarise=False)
    return summary, expanded


def assert_same(summary: repeats.Summary, expanded: repeats.Summary) -> None:
    """Figure by figure (passes/figures.py's names first, for a readable failure), then the whole document."""
    s, e = summary.document, expanded.document
    t_s, t_e = s["totals"], e["totals"]
    for key in ("params", "weights", "biases", "buffers", "macs", "flops", "connections", "quadratic_macs",
                "causal_macs"):
        assert key in FIGURES
        assert t_s[key] == t_e[key], key
    assert t_s["other_ops"] == t_e["other_ops"]
    assert t_s["memory"] == t_e["memory"]  # activation sum, inference peak, training estimate
    assert t_s["kv_cache"] == t_e["kv_cache"]
    assert t_s["sharing"] == t_e["sharing"]
    assert s["by_kind"] == e["by_kind"]
    assert s["receptive_field"] == e["receptive_field"]
    assert s["training"] == e["training"]
    assert s["convention"] == e["convention"]
    assert s.get("rows") == e.get("rows")
    assert s == e
    assert summary.layers == expanded.layers


@pytest.mark.parametrize("name", ZOO)
def test_every_built_in_spec_summarised_equals_expanded(name: str) -> None:
    """Summarising every repeat of 5 or more (base 2: more repeats summarised than by default)."""
    source = read(str(SPECS / name))
    summary = repeats.summarize_text(source.text, source.filename, analyze, document, depth=1, base=2)
    if not summary.summarised:
        assert summary.reason  # expanded, and it says why
        return
    expanded = repeats.summarize_text(source.text, source.filename, analyze, document, depth=1, summarise=False)
    assert_same(summary, expanded)


def test_the_zoo_has_repeats_that_are_summarised() -> None:
    """The test above compares something: these specs are summarised, not expanded."""
    done = []
    for name in ("resnet152.arch", "gpt2.arch", "vit_b_16.arch", "resnet101.arch"):
        source = read(str(SPECS / name))
        summary = repeats.summarize_text(source.text, source.filename, analyze, document, base=2)
        done.append(sorted(s.count for s in summary.summarised))
    assert done == [[7, 35], [12], [12], [22]]


CBR = "block cbr(c): conv3-{c}/p1, bn, relu\n"
GENERATED = {
    # nested repeats: 12 blocks of 9 conv-BN-ReLUs
    "nested": "input 16x12x12\n" + CBR + "block stage: cbr(16) x9\nstage x12\nconv1-4\n",
    # the first block changes the shape (a stride and a projection shortcut), the rest keep it
    "stride-first": "input 8x32x32\n"
                    "block res(c, s=1):\n    residual:\n        conv3-{c}/s{s}/p1, bn, relu, conv3-{c}/p1, bn\n"
                    "    shortcut: auto\n    relu\n"
                    "res(16, s=2), res(16) x11\nres(32) x10\ngap, fc-10\n",
    # a stage's first block changes the channels inside the repeat itself (auto: a projection once)
    "widening-first": "input 8x16x16\n"
                      "block res(c):\n    residual:\n        conv3-{c}/p1, bn, relu, conv3-{c}/p1, bn\n"
                      "    shortcut: auto\n    relu\n"
                      "res(16) x9\nmaxpool\nres(32) x8\n",
    # a skip around a whole stage: the stage's input is alive across every block
    "skip-around-stage": "input 8x16x16\n" + CBR + "residual:\n    cbr(8) x10\nshortcut: identity\ncbr(8) x7\n",
    # transformers: a tied head after the repeat, a decoder reading a memory in every block
    "gpt": "param seq=32, vocab=300, dim=64, heads=4, depth=13\ninput {seq}\n"
           "block h:\n    residual:\n        layernorm\n        attention/causal(heads={heads})\n"
           "    shortcut: identity\n    residual:\n        layernorm\n        mlp(hidden={4*dim}, act=gelu-tanh)\n"
           "    shortcut: identity\n"
           "embedding(vocab={vocab}, dim={dim}) as wte\nposition-embedding(max=64)\nh x{depth}\nlayernorm\n"
           "fc-{vocab}/nobias(tie=wte)\n",
    "cross-attention": "input src 16x32\ninput tgt 8x32\n"
                       "block enc:\n    residual:\n        attention(heads=4)\n    shortcut: identity\n"
                       "block dec(m):\n    residual:\n        attention/causal(heads=4)\n    shortcut: identity\n"
                       "    residual:\n        attention(@in, @m, heads=4)\n    shortcut: identity\n"
                       "memory = @src, enc x7\n@tgt, dec(@memory) x9\nfc-50\n",
    # the spec's hidden activation after every weighted layer but the last (the last repetition's)
    "hidden-activation": "hidden-activation relu\ninput 8x16x16\nconv3-8/p1 x20\n",
    # a repeat inside a block called by a loop; down and up again (the jump goes 2, then back to 1)
    "loop-and-repeat": "input 8x16x16\nblock b(c): conv3-{c}/p1, relu x9\nb(8) for j in range(3)\n",
    "down-and-up": "input 8x16x16\nblock ud: conv3-8/s2/p1, upsample(scale=2)\nud x12\n",
    "recurrent": "input 20x32\nlstm(hidden=32) x8\nfc-5\n",
    # repeats in a block called with different arguments: one repeat summarised per count
    "two-counts": "input 8x16x16\n" + CBR + "block stage(c, n): cbr({c}) x{n}\n"
                  "stage(8, 9), stage(8, 11), stage(16, 9)\n",
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_repeat_specs_summarised_equal_expanded(name: str) -> None:
    summary, expanded = both(GENERATED[name])
    assert summary.summarised, summary.reason
    assert_same(summary, expanded)
    assert summary.nodes_built < expanded.nodes_built * (1 + summary.analyses)


def test_the_options_of_the_analysis_are_kept() -> None:
    """A batch, a dtype, an optimizer and a convention: the same figures as expanded, each."""
    def analyse(graph: Any) -> Any:
        memory = MemoryOptions("float16", 8, "momentum")
        return analyze(graph, memory, "ptflops", TrainingOptions("momentum", "fp16", batch=8))

    summary, expanded = both(GENERATED["stride-first"], analyse=analyse)
    assert summary.summarised
    assert summary.document["convention"]["name"] == "ptflops"
    assert_same(summary, expanded)


@pytest.mark.parametrize("text, why", [
    # the channels grow with every block (DenseNet): not the same block twice
    ("input 8x8x8\nblock d:\n    x = identity\n    y = conv3-4/p1\n    concat(@x, @y)\nd x9\n", "no repeat"),
    # an instance applied again in every repetition: weights from outside the repetition
    ("input 8x16x16\nconv3-8/p1 as c\nc x20\nfc-10\n", "no repeat"),
    ("input 8x16x16\nblock b: conv3-8/p1, relu\nb as t\nt x20\n", "no repeat"),
    # a tensor made before the repeat and read after it: alive across the whole repeat (summarised)
    ("input 8x8x8\n" + CBR + "x = cbr(8)\ncbr(8) x9\nadd(@x, @input)\n", None),
])
def test_what_is_not_plainly_repeated_equals_expanded(text: str, why: str | None) -> None:
    summary, expanded = both(text)
    assert_same(summary, expanded)
    if why:
        assert not summary.summarised and why in (summary.reason or "")


def test_a_checkpointed_training_step_is_never_carried() -> None:
    """Checkpoint segments move with the length: the check at one more count refuses it, or the figures
    are equal; never different."""
    def analyse(graph: Any) -> Any:
        return analyze(graph, training_options=TrainingOptions("adam", checkpoint=3))

    summary, expanded = both(GENERATED["nested"], analyse=analyse)
    assert_same(summary, expanded)


MILLION = ("input 64x32x32\nblock cbr(c): conv3-{c}/p1, bn, relu\nblock stage: cbr(64) x1000\n"
           "stage x1000\n")


def test_three_million_layers_as_repeats_cost_a_few_hundred_nodes() -> None:
    """`cbr(64) x1000` in a block repeated 1,000 times: counted by work (nodes built), not by timing."""
    summary = archcalc.totals(MILLION, depth=1)
    t = summary.document["totals"]
    conv, bn = 64 * 64 * 9 + 64, 2 * 64
    assert summary.layers == 3_000_001
    assert t["params"] == 1_000_000 * (conv + bn)
    assert t["buffers"] == 1_000_000 * (2 * 64 + 1)
    assert t["macs"] == 1_000_000 * 64 * 64 * 9 * 32 * 32
    assert t["flops"] == 2 * t["macs"]
    assert t["memory"]["activation_bytes"] == 4 * 64 * 32 * 32 * (3_000_000 + 1)
    assert t["memory"]["inference_peak_bytes"] == 2 * 4 * 64 * 32 * 32  # a layer's input and output
    rf = summary.document["receptive_field"]["rf"]  # 1,000,000 3×3 windows, stride 1: 1 + 1,000,000·(3 − 1)
    assert rf["size"] == [2_000_001] * 2 and rf["jump"] == [1, 1] and rf["start"] == [-1_000_000] * 2
    assert [s.count for s in summary.summarised] == [1000, 1000]
    assert summary.analyses == 6  # 4 corners and one check per repeat
    assert summary.nodes_built < 1_000  # against 3,000,001 expanded
    rows = summary.document["rows"]
    assert rows[1]["repeat"] == 1000 and rows[1]["rows"][1]["repeat"] == 1000


def test_the_cli_says_it_is_a_summary() -> None:
    result = CliRunner().invoke(cli, ["report", "-", "--totals", "--format", "json"], input=MILLION)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert "layers" not in doc
    assert doc["summary"]["expanded_layers"] == 3_000_001
    assert [r["count"] for r in doc["summary"]["repeats"]] == [1000, 1000]
    assert doc["totals"]["params"] == 37_056_000_000
    text = CliRunner().invoke(cli, ["report", "-", "--totals"], input=MILLION).output
    assert "3,000,000 layers" in text and "params             37,056,000,000" in text


def test_the_cli_totals_match_the_full_json() -> None:
    """Every figure of `report --totals --format json` is the one `report --format json` prints."""
    runner = CliRunner()
    for args in (["resnet152"], ["gpt2", "--set", "depth=700", "--set", "seq=64"]):
        full = json.loads(runner.invoke(cli, ["report", *args, "--format", "json", "--batch", "4"]).output)
        short = json.loads(runner.invoke(cli, ["report", *args, "--totals", "--format", "json",
                                               "--batch", "4"]).output)
        if "kv_cache" in full["totals"]:  # its per-layer list is grouped in a summary (docs/repeats.md)
            assert {**full["totals"]["kv_cache"], "layers": None} == {**short["totals"]["kv_cache"], "layers": None}
            full["totals"].pop("kv_cache"), short["totals"].pop("kv_cache")
        for key in ("totals", "receptive_field", "by_kind", "convention", "training", "output", "depth"):
            assert short[key] == full[key], key
        summarised = short["summary"]["fell_back"] is None
        assert summarised == (args[0] == "gpt2"), short["summary"]  # resnet152's 516 layers: expanding is cheaper
        assert bool(short["summary"]["repeats"]) == summarised


def test_totals_expand_a_small_spec_rather_than_summarise_it() -> None:
    """A summary costs 3 or more analyses at small counts; below EXPAND_BELOW layers expanding is cheaper."""
    small = archcalc.totals("resnet152")
    assert small.reason == "at most 5,000 layers: expanding costs less than summarising"
    assert small.analyses == 1 and small.document["totals"]["params"] == 60_192_808
    big = archcalc.totals(MILLION)
    assert big.reason is None and big.nodes_built < 2_000


def test_a_spec_over_the_limit_that_cannot_be_summarised_is_refused_as_before() -> None:
    text = "input 8x8x8\nblock d:\n    x = identity\n    y = conv3-4/p1\n    concat(@x, @y)\nblock s: d x500\ns x500\n"
    result = CliRunner().invoke(cli, ["report", "-", "--totals"], input=text)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    expanded = CliRunner().invoke(cli, ["report", "-"], input=text)
    assert result.output == expanded.output  # the message the per-layer report gives, word for word
    assert "more than the limit of 250,000" in result.output and "\n 7 | s x500\n" in result.output


def test_totals_refuse_per_layer_options() -> None:
    result = CliRunner().invoke(cli, ["report", "resnet50", "--totals", "--columns", "params"])
    assert result.exit_code != 0 and "--totals lists no layers" in result.output
    result = CliRunner().invoke(cli, ["report", "resnet50", "--totals", "--format", "csv"])
    assert result.exit_code != 0 and "--format table or json" in result.output
