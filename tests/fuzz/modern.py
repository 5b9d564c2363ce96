"""Specs in the language the later issues added: the grammar grows with the language.

grammar.py writes the classic language (layers, blocks, branches, residuals, repeats);
this module writes what came after it, each drawn small and mostly valid so that the
commands get past the parser:

- several named inputs (`input left 1x32x32`) and instances shared with `as` (a siamese
  tower, a recursive conv applied three times), ties (`fc-100/nobias(tie=wte)`, `tie=wte.T`);
- tensor operations with PyTorch dims: reshape/view, flatten(start, end), permute,
  transpose, squeeze/unsqueeze, concat(dim=…), add/sub/mul/div/abs, mean/sum, matmul,
  `parameter(SHAPE)`, pad (every mode), TF-SAME padding, log-softmax, softmax(dim=…),
  prelu, hardtanh, gelu/tanh, `/frozen`, split statements (`q, k, v = chunk(3, dim=-1)`);
- transformers: attention (layouts, heads, kv_heads, causal, rotary), mlp (gated, conv1d),
  layernorm/rmsnorm/layernorm2d, embeddings, positions, class tokens, patch merging;
- spec functions, loops, comparisons and bounded arithmetic (`param f(v) = …`,
  `… for j in range(n)`, `a if c else b`, min/max/round/floor/ceil/log/sqrt), channel
  shuffle, stochastic depth, and thin family members (`use efficientnet`).
"""

from __future__ import annotations

import random
from collections.abc import Callable

ACTS = ("relu", "gelu", "gelu/tanh", "silu", "tanh", "prelu", "prelu/c", "hardtanh", "hardtanh(min=-2, max=2)",
        "log-softmax", "softmax(dim=1)", "abs", "sigmoid", "hardswish")


def spec(rng: random.Random) -> str:
    make = rng.choices(list(_MAKERS), weights=[w for w, _ in _MAKERS.values()])[0]
    lines = _MAKERS[make][1](rng)
    return "\n".join([f"# generated {make} {rng.randrange(10**6)}", *lines]) + "\n"


def _c(rng: random.Random) -> int:
    return rng.choice([2, 4, 8, 16, 32])


def _siamese(rng: random.Random) -> list[str]:
    c, s = rng.choice([1, 3]), rng.choice([8, 16, 32, 105])
    shape = f"{c}x{s}x{s}"
    other = shape if rng.random() < 0.9 else f"{c}x{s + 1}x{s}"
    tower = rng.choice([f"conv3-{_c(rng)}, relu, maxpool, conv3-{_c(rng)}, relu, gap, fc-{_c(rng)}",
                        f"conv(k=3, c={_c(rng)}, stride=2, frozen=true), prelu, flatten, fc-{_c(rng)}, sigmoid"])
    join = rng.choice(["sub(@a, @b), abs", "add(@a, @b)", "mul(@a, @b)", "concat(@a, @b, dim=1)",
                       "div(@a, @b)", "sub(@a, @b), abs, mean(1, keepdim=true)"])
    return [f"input left {shape}", f"input right {other}", f"block tower: {tower}",
            "a = @left, tower as twin", "b = @right, twin", f"{join}, fc-1, sigmoid"]


def _recursive(rng: random.Random) -> list[str]:
    c = _c(rng)
    uses = ", ".join(["rec"] * rng.randint(1, 4))
    first = rng.choice([f"conv3-{c} as rec", f"conv(k=3, c={c}) as rec", f"fc-{c} as rec"])
    lines = [f"input {c}x{rng.choice([4, 8, 16])}x8" if "fc" not in first else f"input {c}",
             f"{first}, {rng.choice(ACTS[:5])}, {uses}"]
    if rng.random() < 0.3:
        lines.append(rng.choice(["rec x2", "rec(@input)", "rec as again", "twin"]))
    return lines


def _tensor_ops(rng: random.Random) -> list[str]:
    c, h = _c(rng), rng.choice([4, 6, 8, 16])
    lines = [f"input {c}x{h}x{h}"]
    ops: list[Callable[[], str]] = [
        lambda: f"reshape({c}, -1), unsqueeze(1), squeeze(1), view({c}, {h}, {h})",
        lambda: f"flatten(2), transpose(1, 2), transpose(1, 2), reshape({c}, {h}, {h})",
        lambda: f"flatten(1, 2), view({c}, {h}, {h})",
        lambda: f"permute(0, 2, 3, 1), {rng.choice(['layernorm', 'rmsnorm', 'layernorm(axes=2)'])}, "
                "permute(0, 3, 1, 2)",
        lambda: f"pad({', '.join(str(rng.randint(0, 2)) for _ in range(rng.choice([2, 4])))}, mode="
                f"{rng.choice(['zeros', 'reflect', 'replicate', 'circular'])})",
        lambda: f"conv3-{c}/s{rng.choice([1, 2])}/same, maxpool{rng.choice([2, 3])}/s2/same",
        lambda: f"{rng.choice(ACTS)}, dropout(p=0.1), {rng.choice(ACTS)}",
        lambda: f"conv1-{c}/frozen, bn/frozen, prelu/c",
        lambda: f"channel-shuffle(groups={rng.choice([1, 2])}), stochastic-depth(p=0.2, mode=row)",
        lambda: f"layernorm2d, groupnorm({rng.choice([1, 2])})",
    ]
    for _ in range(rng.randint(1, 4)):
        lines.append(rng.choice(ops)())
    tail = rng.choice([
        ["x = identity", f"g = parameter({c}x1x1)", "mul(@x, @g)"],
        ["x = identity", "p, q = chunk(2, dim=1)", "add(@p, @q)"],
        ["x = identity", f"p, q = split({c // 2 or 1}, dim=1)", "cat = concat(@q, @p, dim=1)"],
        ["f = flatten(2)", "ft = @f, transpose(1, 2)", "matmul(@f, @ft), softmax(dim=-1), mean(-1)"],
        ["s = sum(2, 3, keepdim=true)", "m = @input, mean(2, 3, keepdim=true)", "sub(@s, @m), abs"],
        ["gap, fc-10, log-softmax"],
    ])
    return lines + tail


def _vit(rng: random.Random) -> list[str]:
    patch, image = rng.choice([2, 4]), rng.choice([8, 16, 32])
    dim, heads = rng.choice([(8, 2), (16, 4), (12, 3), (16, 1)])
    layout = rng.choice(["mha", "separate", "fused"])
    return [f"param image={image}, patch={patch}, dim={dim}, heads={heads}, depth={rng.randint(1, 3)}",
            "input 3x{image}x{image}",
            "block enc:", "    residual:", "        layernorm(eps=1e-6)",
            f"        attention(heads={{heads}}, layout={layout})", "    shortcut: identity", "    residual:",
            "        layernorm(eps=1e-6)",
            f"        mlp(hidden={{4*dim}}, act={rng.choice(['gelu', 'relu', 'silu'])}, dropout=0.0)",
            "    shortcut: identity",
            "conv{patch}-{dim}/s{patch}/p0", "flatten(2), transpose(1, 2)",
            *(["class-token", "position-embedding/whole(max={(image//patch)**2 + 1})"] if rng.random() < 0.7 else
              ["position-embedding(max={(image//patch)**2})"]), "enc x{depth}", "layernorm",
            rng.choice(["slice(0, 1), flatten, fc-10", "mean(1), fc-10", "last, fc-10"])]


def _gpt(rng: random.Random) -> list[str]:
    t, vocab, dim = rng.choice([4, 8, 16]), rng.choice([50, 100, 257]), rng.choice([8, 16])
    tie = rng.choice(["tie=wte", "tie=wte", "tie=wte", "tie=wte.T", "tie=wte.T", "tie=nope"])
    return [f"param t={t}, vocab={vocab}, dim={dim}, heads={rng.choice([1, 2, 4])}",
            "input {t}",
            "block blk:", "    residual:", "        layernorm",
            f"        attention{rng.choice(['', '/causal', '/nobias/causal'])}(heads={{heads}}, "
            f"layout={rng.choice(['conv1d', 'fused', 'separate'])})",
            "    shortcut: identity", "    residual:", "        layernorm",
            f"        mlp{rng.choice(['', '/conv1d', '/gated/nobias'])}(hidden={{4*dim}}, act=gelu-tanh)",
            "    shortcut: identity",
            "tok = embedding(vocab={vocab}, dim={dim}) as wte",
            rng.choice(["position-embedding(max={t})", "sinusoidal-positions", "identity"]),
            f"blk x{rng.randint(1, 3)}", "layernorm",
            "fc-{vocab}/nobias(" + tie + ")" if tie != "tie=wte.T" else "fc-{vocab}/nobias, fc-{dim}/nobias(tie=wte.T)"]


def _llama(rng: random.Random) -> list[str]:
    heads, kv = rng.choice([(4, 2), (4, 1), (2, 2), (8, 4)])
    dim = heads * rng.choice([2, 4])
    return [f"param seq={rng.choice([4, 8])}, vocab=100, dim={dim}, heads={heads}, kv_heads={kv}, "
            f"depth={rng.randint(1, 3)}",
            "param head_dim=dim//heads",
            "input {seq}",
            "block decoder(rope):", "    residual:", "        x = rmsnorm(eps=1e-6)",
            "        attention/nobias/causal/rope(@x, @rope, heads={heads}, kv_heads={kv_heads})",
            "    shortcut: identity", "    residual:", "        rmsnorm",
            f"        mlp/gated/nobias(hidden={{3*dim}}, act={rng.choice(['silu', 'gelu'])})",
            "    shortcut: identity",
            "tokens = embedding(vocab={vocab}, dim={dim})", "rope = rotary(dim={head_dim})",
            "@tokens, decoder(@rope) x{depth}", "rmsnorm", "fc-{vocab}/nobias"]


def _swin(rng: random.Random) -> list[str]:
    c = rng.choice([4, 8])
    return ["input 3x16x16", f"conv4-{c}/s4/p0, permute(0, 2, 3, 1), layernorm",
            f"patch-merging, layernorm, fc-{2 * c}/nobias", "permute(0, 3, 1, 2), gap, fc-10"]


def _arithmetic(rng: random.Random) -> list[str]:
    width = rng.choice(["1.0", "1.1", "0.75", "0.5", "2"])
    lines = [f"param width={width}, n={rng.randint(0, 3)}",
             "param nearest(v, d) = max(d, int(v + d / 2) // d * d)",
             "param ch(c) = nearest(c * width, 8) + 8 if nearest(c * width, 8) < 0.9 * c * width "
             "else nearest(c * width, 8)",
             f"input 3x{rng.choice([16, 32])}x{rng.choice([16, 32])}"]
    body = [
        "conv3-{ch(16)}/s2/nobias, bn, silu",
        "conv3-{ch(8 * (j + 1))} for j in range(n)",
        "stochastic-depth(p={0.1 * j / (n + 1)}) for j in range(1, n + 1)",
        "conv1-{max(8, min(64, round(ch(24))))}, hardswish",
        "conv1-{floor(log(64, 2)) * 4}, conv1-{ceil(sqrt(50))}",
        "conv3-{16 if n > 1 else 8}/g{2 if n >= 2 and not n > 3 else 1}",
        "conv1-{ch(32)} x{n}",
        "conv3-{ch(3.5 * 8)}",
    ]
    lines += rng.sample(body, rng.randint(1, 4))
    lines.append("gap, fc-10")
    return lines


def _family(rng: random.Random) -> list[str]:
    member = rng.choice([
        ["use efficientnet", f"param width={rng.choice(['1.0', '1.1', '0.5'])}, depth={rng.choice(['1.0', '0.5'])}"],
        ["use mobilenet_v3", f"param small={rng.randint(0, 1)}, width={rng.choice(['1.0', '0.75', '0.35'])}"],
        ["use shufflenet_v2", "param c2=24, c3=48, c4=96, c5=512"],
        ["use regnet", "param depth=4, w_0=16, w_a=8.0, w_m=2.0, group_width=8"],
    ])
    return [*member, f"input 3x{rng.choice([32, 64, 96])}x{rng.choice([32, 64, 96])}"]


_MAKERS: dict[str, tuple[float, Callable[[random.Random], list[str]]]] = {
    "siamese": (2, _siamese), "recursive": (1, _recursive), "tensor-ops": (4, _tensor_ops), "vit": (2, _vit),
    "gpt": (2, _gpt), "llama": (1.5, _llama), "swin": (0.5, _swin), "arithmetic": (3, _arithmetic),
    "family": (0.5, _family),
}
