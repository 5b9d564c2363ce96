"""What a transformer report shows: the T² part of the MACs, the causal-aware figure, the KV cache,
per-sample and per-batch figures in JSON, totals by kind, and `archcalc sweep` over lengths — all
static (no torch), and as fast for Llama-2-7B as for a small LLaMA."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from tests.test_transformers import LLAMA2_7B, reference


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_gpt2_report_names_the_t2_term_the_causal_figure_and_the_kv_cache() -> None:
    out = run("report", "gpt2", "--set", "seq=128")
    assert "MACs 16,114,089,984" in out and "FLOPs 32,228,179,968" in out  # FlopCounterMode's count
    assert "attention: Q·Kᵀ and A·V 301,989,888 MACs (1.87%), which grow with T²; the other 15,812,100,096 " \
           "grow with T" in out
    # 12 layers · 2 products · 12 heads · 64 · 128·129/2 instead of 128·128
    assert 16_114_089_984 - 301_989_888 + 12 * 2 * 12 * 64 * (128 * 129 // 2) == 15_964_274_688
    assert "causal-aware MACs 15,964,274,688" in out
    assert "KV cache (float32, batch 1): 12 layers × 196,608 elements per sample = 2,359,296 elements, " \
           "9,437,184 B (9.0 MiB)" in out
    for kind in ("attention", "mlp", "embedding", "norm"):
        assert f"│ {kind}" in out


def test_json_says_per_sample_and_per_batch() -> None:
    data = json.loads(run("report", "gpt2", "--set", "seq=128", "--set", "batch=4", "--dtype", "float16",
                          "--format", "json"))
    t = data["totals"]
    ref = reference()["gpt2"]["runs"]["128"]
    assert t["batch"] == 4 and t["memory"]["batch"] == 4
    assert t["macs"] == t["per_sample"]["macs"] == ref["macs"]
    assert t["per_batch"]["flops"] == 4 * ref["flops"] and t["per_batch"]["samples"] == 4
    assert t["per_sample"]["linear_macs"] + t["per_sample"]["quadratic_macs"] == ref["macs"]
    assert 2 * t["quadratic_macs"] == ref["flops_by_op"]["aten.bmm"]
    kv = t["kv_cache"]
    assert (kv["dtype"], kv["batch"], kv["elements_per_sample"]) == ("float16", 4, 2_359_296)
    assert kv["bytes"] == 2_359_296 * 4 * 2
    assert [layer["elements_per_sample"] for layer in kv["layers"]] == [196_608] * 12
    attention = [layer for layer in data["layers"] if layer["type"] == "attention"]
    assert {layer["kv_cache_elements"] for layer in attention} == {196_608}
    assert "per_sample" in data["conventions"] and "causal_macs" in data["conventions"]


def test_batch_is_a_spec_option_and_the_same_as_the_flag() -> None:
    by_set = json.loads(run("report", "llama", "--set", "batch=8", "--format", "json"))["totals"]
    by_flag = json.loads(run("report", "llama", "--batch", "8", "--format", "json"))["totals"]
    assert by_set == by_flag and by_set["per_batch"]["macs"] == 8 * 420_741_120
    result = CliRunner().invoke(cli, ["report", "llama", "--set", "batch=8", "--batch", "2"])
    assert result.exit_code == 2 and "--batch 2 and --set batch=8 disagree" in result.output
    assert archcalc.analyze("llama", params={"batch": 3}).batch == 3


def test_sweep_puts_lengths_side_by_side_with_the_t2_term_apart() -> None:
    out = run("sweep", "gpt2", "--over", "seq=128,1024")
    assert "seq=128" in out and "seq=1024" in out
    assert "16,114,089,984" in out and "145,824,153,600" in out  # FlopCounterMode's MACs at each length
    assert "growing with T² (Q·Kᵀ and A·V)" in out and "301,989,888 (1.9%)" in out
    data = json.loads(run("sweep", "gpt2", "--over", "seq=128,1024", "--format", "json"))
    for column, length in zip(data["columns"], ("128", "1024")):
        ref = reference()["gpt2"]["runs"][length]
        assert column["macs"] == ref["macs"] and column["flops"] == ref["flops"]
        assert column["linear_macs"] + column["quadratic_macs"] == column["macs"]
        assert 2 * column["quadratic_macs"] == ref["flops_by_op"]["aten.bmm"]
        assert sum(column["macs_by_kind"].values()) == column["macs"]
        assert column["kv_cache_bytes"] == 4 * ref["kv_cache"]["elements_all_layers_formula"]
    markdown = run("sweep", "llama", "--over", "seq=128,512", "--format", "markdown")
    assert "| MACs | 420,741,120 | 2,085,617,664 |" in markdown


def test_where_the_flops_go_at_128_and_8192_tokens() -> None:
    data = json.loads(run("sweep", "gpt2", "--over", "seq=128,8192", "--set", "positions=8192", "--format", "json"))
    short, long = data["columns"]
    assert short["macs_by_kind"]["mlp"] > short["macs_by_kind"]["attention"]  # short: the MLP dominates
    assert long["macs_by_kind"]["attention"] > long["macs_by_kind"]["mlp"]  # long: attention's T² term
    assert long["quadratic_macs"] > long["linear_macs"]


def test_sweep_refuses_a_malformed_over() -> None:
    result = CliRunner().invoke(cli, ["sweep", "gpt2", "--over", "seq"])
    assert result.exit_code == 2 and "--over takes NAME=V1,V2,…" in result.output
    result = CliRunner().invoke(cli, ["sweep", "gpt2", "--over", "length=1,2"])
    assert result.exit_code == 2 and "gpt2 has no parameter 'length'" in result.output


def test_transformer_reports_never_import_torch() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom archcalc.cli import cli\n"
        "for args in (['report', 'gpt2', '--format', 'json'], ['sweep', 'llama', '--over', 'seq=16,32'],\n"
        "             ['report', 'swin_t'], ['report', 'bert-base', '--explain']):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _best_of(runs: int, f: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def test_llama2_7b_analyses_as_fast_as_a_small_llama() -> None:
    """Nothing is allocated: the same layers, so the same time, whatever the widths."""
    small = {"depth": 32}
    big = {**LLAMA2_7B, "seq": 2048}
    assert len(archcalc.load("llama", params=small)) == len(archcalc.load("llama", params=big))
    t_small = _best_of(3, lambda: archcalc.analyze("llama", params=small))
    t_big = _best_of(3, lambda: archcalc.analyze("llama", params=big))
    assert archcalc.analyze("llama", params=big).totals.params == 6_738_415_616
    assert t_big < 2 * t_small + 0.05, (t_small, t_big)
