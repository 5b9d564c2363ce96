"""Issue 17's outputs on main's kinds of spec: the Markdown, LaTeX, CSV and HTML reports and the
notebook object of gpt2, vit_b_16 and llama carry the attention figures (T² part, causal-aware
MACs), the KV cache, the --convention and --training lines; --only weighted lists a transformer's
weight layers; a collapsed transformer block says what it holds; a block's cluster is titled with
its own module path. The figures are FlopCounterMode's, from transformer_reference.json."""

from __future__ import annotations

import csv
import io
import re

from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.report.diagram import _cluster_titles, inside
from tests.test_transformers import reference


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


GPT2_128 = ("--set", "seq=128")
T2 = "Q·Kᵀ and A·V 301,989,888 MACs (1.87%), which grow with T²; the other 15,812,100,096 grow with T"
CAUSAL = "causal-aware MACs 15,964,274,688"
KV = "KV cache (float32, batch 1): 12 layers × 196,608 elements per sample = 2,359,296 elements, 9,437,184 B"


def test_reference_figures_behind_the_strings() -> None:
    ref = reference()["gpt2"]["runs"]["128"]
    assert ref["macs"] == 16_114_089_984 and ref["flops_by_op"]["aten.bmm"] == 2 * 301_989_888
    assert ref["kv_cache"]["elements_all_layers_formula"] == 2_359_296


def test_markdown_has_the_attention_lines_and_the_kv_cache() -> None:
    out = run("report", "gpt2", *GPT2_128, "--format", "markdown", "--batch", "2")
    assert T2 in out and CAUSAL in out and KV.replace("batch 1", "batch 2").replace("9,437,184", "18,874,368") in out
    assert "Per batch of 2 (the figures above are per sample): MACs 32,228,179,968" in out
    vit = run("report", "vit_b_16", "--format", "markdown")
    assert "Q·Kᵀ and A·V 715,327,488 MACs" in vit and "causal-aware" not in vit and "KV cache" not in vit


def test_markdown_and_latex_carry_the_convention_and_training() -> None:
    md = run("report", "gpt2", *GPT2_128, "--format", "markdown", "--convention", "ptflops", "--training")
    assert "> under ptflops" in md and "> training step (adam, fp32, batch 1)" in md
    assert "| Ptflops MACs |" in md or "ptflops" in md.split("\n")[2].lower()
    tex = run("report", "gpt2", *GPT2_128, "--format", "latex", "--only", "weighted", "--training")
    head = next(line for line in tex.splitlines() if line.startswith(r"\#"))
    assert "Params" in head and "MACs" in head and len(head.split("&")) > 8  # the training columns too


def test_only_weighted_lists_a_transformers_weight_layers() -> None:
    tex = run("report", "gpt2", *GPT2_128, "--format", "latex", "--only", "weighted")
    rows = [line for line in tex.splitlines() if re.match(r"\d+ & ", line)]
    kinds = [line.split(" & ")[2] for line in rows]
    assert kinds.count("attention") == 12 and kinds.count("mlp") == 12 and kinds.count("fc") == 1
    assert {"embedding", "position-embedding"} <= set(kinds) and "layernorm" not in kinds
    headings = [line for line in tex.splitlines() if r"\multicolumn" in line and "textit" in line]
    assert len(headings) == 12  # h#1 … h#12, and no empty heading before the output FC
    lines = tex.splitlines()
    at = next(i for i, line in enumerate(lines) if "fc-50257" in line)
    assert "mlp(" in lines[at - 1] and r"\multicolumn" not in lines[at - 1]


def test_csv_of_a_transformer_at_block_depth() -> None:
    rows = list(csv.DictReader(io.StringIO(run("report", "gpt2", *GPT2_128, "--format", "csv", "--depth", "0",
                                                 "--columns", "shape,params,macs,rf"))))
    assert sum(int(r["macs"]) for r in rows) == 16_114_089_984
    assert sum(int(r["params"]) for r in rows) == reference()["gpt2"]["params"]
    assert [r["layer"] for r in rows].count("h") == 0 and sum(r["layer"].startswith("h#") for r in rows) == 12


def test_html_totals_have_attention_kv_cache_convention_and_training(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "gpt2.html"
    run("report", "gpt2", *GPT2_128, "--format", "html", "-o", str(out), "--convention", "fvcore", "--training")
    page = out.read_text()
    totals = re.search(r'<dl class="totals">(.*?)</dl>', page, re.S)
    assert totals is not None
    text = re.sub(r"<[^>]+>", " ", totals.group(1))
    assert T2 in text and CAUSAL in text and KV.removeprefix("KV cache ") in text
    assert "under fvcore" in text
    training = re.search(r'<ul class="training">(.*?)</ul>', page, re.S)
    assert training is not None and "training step (adam, fp32, batch 1)" in training.group(1)
    llama = tmp_path / "llama.html"
    run("report", "llama", "--format", "html", "-o", str(llama))
    assert "4 layers × 16,384 elements per sample = 65,536 elements" in llama.read_text()
    assert '<ul class="training">' not in llama.read_text()  # only with --training


def test_the_notebook_object_of_gpt2() -> None:
    a = archcalc.analyze("gpt2", params={"seq": 128})
    html = a._repr_html_()
    assert T2 in html and CAUSAL in html and KV.removeprefix("KV cache ") in html
    d = a.to_dict()
    assert d["totals"]["quadratic_macs"] == 301_989_888 and d["totals"]["causal_macs"] == 15_964_274_688
    assert d["totals"]["kv_cache"]["elements_per_sample"] == 2_359_296
    assert d["training"]["flops"]["step"] == a.step.step
    attention = [layer for layer in a.layers if layer.type == "attention"]
    assert len(attention) == 12 and {layer.macs for layer in attention} == {attention[0].macs}


def test_a_collapsed_transformer_block_says_what_it_holds() -> None:
    for name, block in (("vit_b_16", ("encoder#1", "encoder_layers#1", "encoder_block#1")), ("gpt2", ("h#1",)),
                        ("llama", ("decoder#1",))):
        a = archcalc.analyze(name)
        nodes = [n for n in a.graph if n.scope[:len(block)] == block]
        assert inside(a, nodes) == "(attn + id)→(mlp + id)", name
    a = archcalc.analyze("resnet50")
    nodes = [n for n in a.graph if n.scope[:1] == ("stage#1",)]
    assert inside(a, nodes).startswith("(1×1→3×3→1×1 + 1×1)→(1×1→3×3→1×1 + id)")
    a = archcalc.analyze("efficientnet_b0")
    se = [n for n in a.graph if n.scope[-1:] == ("se#1",)]
    assert inside(a, se) == "id · pool→1×1→1×1"


def test_a_blocks_cluster_is_titled_with_its_own_module_path() -> None:
    titles = _cluster_titles(archcalc.analyze("efficientnet_b0"))
    assert titles[("stage#1",)] == "features.1 = stage#1"  # not the path its one block shares
    assert titles[("stage#1", "plain#1")] == "features.1.0 = plain#1"
    assert titles[("stage#1", "plain#1", "layers#1")] == "features.1.0.block = layers#1"
    titles = _cluster_titles(archcalc.analyze("resnet18"))
    assert titles[("stage#1",)] == "layer1 = stage#1" and titles[("stage#1", "basic#2")] == "layer1.1 = basic#2"
