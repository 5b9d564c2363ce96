"""The transformer layer types one by one: built in torch and verified (shapes, parameters, buffers,
FLOPs per layer), computing what PyTorch's own modules compute, and refusing bad input with one
positioned message each."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc import load_text  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.layers import REGISTRY  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.build import build  # noqa: E402
from archcalc.pytorch.verify import verify  # noqa: E402

SEQ = "input 12\nembedding(vocab=50, dim=48)\n"  # 12 tokens of 48 features
MAP = "input 3x56x56\nconv4-24/s4/p0, permute(0, 2, 3, 1)\n"  # a 14×14×24 channels-last map


def verified(text: str, batch: int = 2) -> archcalc.LayerGraph:  # type: ignore[name-defined]
    graph = load_text(text, "t.arch")
    report = verify(graph, "cpu", batch=batch, runs=0)
    wrong = "\n".join(f"  {c.scope} '{c.text}': {c.what} archcalc {c.archcalc} != torch {c.torch}"
                      for c in report.failures)
    assert report.ok, f"\n{text}{wrong}"
    return graph


@pytest.mark.parametrize("layers", [
    "layernorm", "layernorm/nobias(eps=1e-6)", "layernorm/noaffine", "layernorm(axes=2)", "rmsnorm",
    "rmsnorm/noaffine(eps=1e-5)",
    "attention(heads=4)", "attention/nobias(heads=4, kv_heads=2)", "attention/fused(heads=6, kv_heads=1)",
    "attention/mha(heads=8)", "attention/conv1d/causal(heads=3)", "attention(heads=2, head_dim=5, dim=20)",
    "attention(heads=4, out_bias=false)", "attention/causal/nocache(heads=4)",
    "mlp(hidden=96)", "mlp/conv1d(hidden=96, act=gelu-tanh, dropout=0.1)", "mlp/gated/nobias(hidden=64, act=silu)",
    "mlp(hidden=40, out=16, act=relu)",
    "position-embedding(max=20)", "position-embedding/whole(max=12)", "position-embedding/ids(max=64)",
    "sinusoidal-positions", "token-type-embedding(types=2, max=64)", "class-token, token(0)", "token(-1)",
    "layer-scale", "stochastic-depth(p=0.1)", "dropout(0.1), layernorm, mlp(hidden=32)",
])
def test_sequence_layers_agree_with_torch(layers: str) -> None:
    verified(SEQ + layers + "\n")


@pytest.mark.parametrize("layers", [
    "attention/fused/relpos(heads=3, window=7)", "attention/fused/relpos(heads=3, window=7, shift=3)",
    "attention/fused(heads=2, window=7, shift=3)", "attention(heads=4, window=2x7)",
    "patch-merging, layernorm, fc-48/nobias", "layernorm, mlp(hidden=48), permute(0, 3, 1, 2), layer-scale",
])
def test_channels_last_map_layers_agree_with_torch(layers: str) -> None:
    verified(MAP + layers + "\n")


@pytest.mark.parametrize("layers", ["layernorm2d", "groupnorm(4)", "groupnorm(groups=2, eps=1e-6)",
                                    "layer-scale(init=0.5)"])
def test_channels_first_layers_agree_with_torch(layers: str) -> None:
    verified("input 8x6x6\n" + layers + "\n")


def test_cross_attention_reads_keys_and_values_from_the_memory() -> None:
    text = ("input tokens 10\ninput memory 7x32 as sequence\nx = @tokens, embedding(vocab=20, dim=48)\n"
            "attention(@x, @memory, heads=4)\n")
    g = verified(text)
    a = analyze(g)
    n = g.output
    # q 10·48·48, k and v 7·32·48 each, out 10·48·48; Q·Kᵀ and A·V 4·10·7·12 each
    assert a.macs[n.id] == 10 * 48 * 48 + 2 * 7 * 32 * 48 + 10 * 48 * 48 + 2 * 4 * 10 * 7 * 12
    assert a.counts[n.id].params == 48 * 48 + 2 * 32 * 48 + 48 * 48 + 3 * 48 + 48


def test_a_rotary_table_feeds_every_layer_and_holds_its_buffers_once() -> None:
    text = ("input 9\nx = embedding(vocab=20, dim=32)\nrope = rotary(dim=8)\n"
            "block layer(r):\n    residual:\n        h = rmsnorm\n"
            "        attention/causal/nobias/rope(@h, @r, heads=4, kv_heads=2)\n    shortcut: identity\n"
            "@x, layer(@rope) x3\n")
    g = verified(text)
    assert analyze(g).totals.counts.buffers == 8  # inv_freq and original_inv_freq, 4 each, once
    assert sum(1 for n in g if n.type == "attention") == 3


# -- what the modules compute ------------------------------------------------------------------------


def _module(text: str) -> torch.nn.Module:
    model = build(load_text(text, "t.arch"))
    return model.get_submodule(next(p for p, m in model.named_children()))  # type: ignore[no-any-return]


def module_path(graph: Any, layer_type: str) -> str:
    """The torch module path of the graph's first layer of a type (lang/modules.py names it)."""
    return next(n.module for n in graph if n.type == layer_type)


def test_causal_attention_equals_torchs_causal_sdpa() -> None:
    torch.manual_seed(0)
    graph = load_text("input 10x16 as sequence\nattention/causal/nobias(heads=4, kv_heads=2)\n", "t.arch")
    model = build(graph).eval()
    attn = model.get_submodule(module_path(graph, "attention"))
    x = torch.randn(2, 10, 16)
    q = attn.q(x).view(2, 10, 4, 4).transpose(1, 2)
    k = attn.k(x).view(2, 10, 2, 4).transpose(1, 2).repeat_interleave(2, dim=1)
    v = attn.v(x).view(2, 10, 2, 4).transpose(1, 2).repeat_interleave(2, dim=1)
    want = attn.out(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
                    .transpose(1, 2).reshape(2, 10, 16))
    torch.testing.assert_close(model(x), want)


def test_the_mha_layout_equals_nn_multiheadattention() -> None:
    torch.manual_seed(0)
    graph = load_text("input 7x24 as sequence\nattention/mha(heads=3)\n", "t.arch")
    model = build(graph).eval()
    ours = model.get_submodule(module_path(graph, "attention"))
    theirs = torch.nn.MultiheadAttention(24, 3, batch_first=True).eval()
    theirs.load_state_dict(ours.state_dict())  # the same tensor names and shapes: in_proj_*, out_proj.*
    x = torch.randn(2, 7, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x), theirs(x, x, x, need_weights=False)[0])


def test_the_conv1d_layout_holds_gpt2s_transposed_weights() -> None:
    g = load_text(SEQ + "attention/conv1d(heads=4)\nmlp/conv1d(hidden=96)\n", "t.arch")
    shapes = {n.type: n.layer.param_shapes(n.args, n.in_shapes, n.shape) for n in g if n.type in ("attention", "mlp")}
    assert shapes["attention"] == {"c_attn.weight": (48, 144), "c_attn.bias": (144,), "c_proj.weight": (48, 48),
                                   "c_proj.bias": (48,)}
    assert shapes["mlp"] == {"fc1.weight": (48, 96), "fc1.bias": (96,), "fc2.weight": (96, 48), "fc2.bias": (48,)}
    model = build(g)
    path = module_path(g, "attention")
    assert {k: tuple(v.shape) for k, v in model.named_parameters() if k.startswith(path + ".")} == {
        f"{path}.{k}": v for k, v in shapes["attention"].items()}


def test_the_relative_position_index_is_torchvisions() -> None:
    """(h_i − h_j + 6)·13 + (w_i − w_j + 6) for a 7×7 window, as the reference notes state it."""
    from archcalc.pytorch.transformer import _relative_index

    index = _relative_index(7, 7).view(49, 49)
    hw = [(i // 7, i % 7) for i in range(49)]
    assert index.tolist() == [[(hi - hj + 6) * 13 + (wi - wj + 6) for hj, wj in hw] for hi, wi in hw]


# -- the causal figure and the T² term ------------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 7, 16])
def test_the_causal_figure_counts_the_lower_triangle(t: int) -> None:
    a = analyze(load_text(f"input {t}x8 as sequence\nattention/causal/nobias(heads=2)\n", "t.arch"))
    n = a.graph.output.id
    kept = sum(1 for i in range(t) for j in range(t) if j <= i)  # query i sees keys 0..i
    projections = 4 * t * 8 * 8
    assert a.macs[n] == projections + 2 * 2 * t * t * 4  # FlopCounterMode's full T×T
    assert a.attention.causal_macs[n] == projections + 2 * 2 * kept * 4
    assert a.attention.quadratic_macs[n] == 2 * 2 * t * t * 4


def test_an_unmasked_model_has_no_other_causal_figure() -> None:
    a = analyze(load_text(SEQ + "attention(heads=4)\n", "t.arch"))
    assert a.attention.total_causal_macs == a.totals.macs


def test_windowed_attention_scores_each_token_against_its_window() -> None:
    a = analyze(load_text(MAP + "attention/fused(heads=3, window=7)\n", "t.arch"))
    n = a.graph.output.id
    assert a.attention.quadratic_macs[n] == 2 * 3 * (14 * 14) * 49 * 8  # heads · HW · w² · head_dim, twice


# -- bad input -----------------------------------------------------------------------------------------


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    return str(info.value)


def test_heads_that_do_not_divide_the_width() -> None:
    assert error_of("input 16x500 as sequence\nattention(heads=12)\n") == (
        "t.arch:2:1: error: cannot apply 'attention(heads=12)' to 16×500: 12 heads do not divide the width 500 "
        "(head_dim would be 41.67); give head_dim=N for heads of another width\n"
        " 2 | attention(heads=12)\n"
        "   | ^^^^^^^^^^^^^^^^^^^")


def test_kv_heads_that_do_not_divide_the_heads() -> None:
    assert error_of("input 16x512 as sequence\nattention(heads=8, kv_heads=3)\n") == (
        "t.arch:2:1: error: cannot apply 'attention(heads=8, kv_heads=3)' to 16×512: kv_heads=3 does not divide "
        "heads=8: grouped-query attention shares each key/value head among heads/kv_heads query heads\n"
        " 2 | attention(heads=8, kv_heads=3)\n"
        "   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^")


def test_a_window_that_does_not_divide_the_map_says_what_swin_would_pad() -> None:
    text = "input 3x240x240\nconv4-96/s4/p0, permute(0, 2, 3, 1)\nattention/fused(heads=3, window=7, shift=3)\n"
    assert error_of(text) == (
        "t.arch:3:1: error: cannot apply 'attention/fused(heads=3, window=7, shift=3)' to 60×60×96: window 7×7 does "
        "not divide the 60×60 map: torchvision's Swin pads it to 63×63 (F.pad: 3 rows at the bottom, 3 columns at "
        "the right, zeros) and attends over the padding too; pad the map yourself (pad(…)) or choose a window "
        "that divides it\n"
        " 3 | attention/fused(heads=3, window=7, shift=3)\n"
        "   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^")


def test_a_sequence_longer_than_the_position_table() -> None:
    assert error_of("input 2048\nembedding(vocab=100, dim=64)\nposition-embedding(max=1024)\n") == (
        "t.arch:3:1: error: cannot apply 'position-embedding(max=1024)' to 2048×64: a sequence of 2,048 tokens is "
        "longer than the position table (1,024 positions): the model cannot take it\n"
        " 3 | position-embedding(max=1024)\n"
        "   | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  a longer table needs max=2048 or more (where a spec parameter sets max, --set it too)")


def test_gpt2_beyond_its_1024_positions_is_the_same_error() -> None:
    with pytest.raises(SpecError) as info:
        archcalc.load("gpt2", params={"seq": 2048})
    from archcalc.zoo import specs_dir

    line = next(i for i, text in enumerate((specs_dir() / "gpt2.arch").read_text().splitlines(), start=1)
                if text.startswith("position-embedding"))
    assert str(info.value).startswith(f"gpt2.arch:{line}:1: error: cannot apply 'position-embedding(max=1024)' to "
                                      "2048×768: a sequence of 2,048 tokens is longer than the position table")
    assert archcalc.analyze("gpt2", params={"seq": 2048, "positions": 2048}).totals.params == 124_439_808 + 1024 * 768


def test_a_tie_of_mismatched_shapes() -> None:
    assert error_of("input 16\nembedding(vocab=100, dim=64) as wte\nfc-64/nobias(tie=wte)\n") == (
        "t.arch:3:1: error: cannot tie 'fc-64/nobias(tie=wte)' (weight 64×64) to the weight of layer 1 "
        "(embedding(vocab=100, dim=64), line 2, 100×64)\n"
        " 3 | fc-64/nobias(tie=wte)\n"
        "   | ^^^^^^^^^^^^^^^^^^^^^")


@pytest.mark.parametrize("text, message", [
    (SEQ + "attention/mha(heads=8, kv_heads=2)\n", "nn.MultiheadAttention has no grouped-query form"),
    (SEQ + "attention(heads=4, shift=3)\n", "shift=… moves Swin's windows: it needs window=N"),
    (SEQ + "attention/relpos(heads=4)\n", "rel_pos=true is Swin's relative position bias table"),
    (SEQ + "attention(heads=4, window=7)\n",
     "windowed attention reads a channels-last map H×W×C (features last, as after permute(0, 2, 3, 1)), got 12×48"),
    (MAP + "attention(heads=4)\n", "attention reads a sequence T×F, got 14×14×24"),
    (MAP + "attention(heads=4, window=7, shift=7)\n", "shift 7×7 must be smaller than the window 7×7"),
    (SEQ + "attention/rope(heads=4)\n", "rotary=true reads the rotary table as the last input"),
    (SEQ + "x = rotary(dim=7)\n", "rotary dims come in pairs: dim=7 is odd"),
    ("input 12\nx = embedding(vocab=5, dim=48)\nr = rotary(dim=16)\nattention/rope(@x, @r, heads=4)\n",
     "the rotary table rotates 16 dims of each head; it must be even and at most head_dim=12"),
    ("input a 5\ninput b 6x8 as sequence\nx = @a, embedding(vocab=5, dim=8)\nattention/fused(@x, @b, heads=2)\n",
     "layout=fused projects one input to q, k and v at once"),
    ("input a 5\ninput b 6x8 as sequence\nx = @a, embedding(vocab=5, dim=8)\nattention/causal(@x, @b, heads=2)\n",
     "causal=true masks a sequence against itself"),
    (SEQ + "position-embedding/whole(max=10)\n", "the whole position table (10 positions) is added to a sequence "
                                                  "of 12 tokens"),
    (SEQ + "token(12)\n", "token 12 is not one of the 12 positions"),
    ("input 8x6x6\ngroupnorm(3)\n", "groups=3 must divide the 8 channels"),
    (SEQ + "layernorm(axes=3)\n", "'layernorm' over the last 3 axes needs as many, got 12×48"),
    (SEQ + "mlp/gated(hidden=8, dropout=0.1)\n", "a gated MLP (LLaMA's) has no dropout between its layers"),
    (SEQ + "mlp(hidden=8, act=swish)\n", "argument 'act' of 'mlp' must be a word, not 'swish' (one of gelu, "
                                          "gelu-tanh, relu, silu, tanh, sigmoid)"),
    (SEQ + "stochastic-depth(p=1.5)\n", "stochastic-depth probability p=1.5 is not between 0 and 1"),
    ("input 3x8x8\npatch-merging\n", "'patch-merging' reads a channels-last map H×W×C (features last, as after "
                                     "permute(0, 2, 3, 1)), got 3×8×8 channels first"),
    ("input 3x8x8\nattention(heads=1, window=2)\n", "windowed attention reads a channels-last map H×W×C "
                                                  "(features last, as after permute(0, 2, 3, 1)), got 3×8×8 "
                                                  "channels first"),
])
def test_each_bad_input_is_one_positioned_error(text: str, message: str) -> None:
    error = error_of(text)
    assert message in error and error.startswith("t.arch:") and "^" in error


def test_a_block_reads_a_tensor_argument_as_a_name() -> None:
    text = ("input 4x8 as sequence\nside = fc-8\nblock mix(other):\n    add(@in, @other)\n"
            "@input, mix(@side) x2\n")
    g = load_text(text, "t.arch")
    adds = [n for n in g if n.type == "add"]
    assert [n.inputs for n in adds] == [(0, 1), (2, 1)]
    assert "no node is named 'sid'" in error_of(text.replace("mix(@side)", "mix(@sid)"))


def test_every_new_layer_type_is_listed() -> None:
    names = {"attention", "layernorm", "layernorm2d", "rmsnorm", "groupnorm", "position-embedding",
             "sinusoidal-positions", "token-type-embedding", "rotary", "class-token", "token", "mlp", "layer-scale",
             "patch-merging", "stochastic-depth"}
    assert names <= set(REGISTRY)
    assert all(REGISTRY[n].summary and REGISTRY[n].example for n in names)


# -- export ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, settings", [
    ("llama", {"seq": 8}), ("gpt2", {"seq": 8, "vocab": 100, "dim": 24}), ("swin_t", {"dim": 32}),
])
def test_a_transformer_exports_as_a_standalone_module(name: str, settings: dict[str, int]) -> None:
    from archcalc.pytorch.build import class_name, probe_input
    from archcalc.pytorch.export import export_source

    graph = archcalc.load(name, params=settings)
    source = export_source(graph)
    assert "archcalc" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    namespace: dict[str, object] = {}
    exec(compile(source, f"{name}.py", "exec"), namespace)  # noqa: S102 - the file archcalc just wrote
    model = namespace[class_name(graph)]().eval()  # type: ignore[operator]
    t = analyze(graph).totals
    assert sum(p.numel() for p in model.parameters()) == t.params  # GPT-2's tie holds: one tensor
    assert sum(b.numel() for b in model.buffers()) == t.counts.buffers
    with torch.no_grad():
        assert tuple(model(probe_input(graph)).shape[1:]) == graph.output.shape
