"""Random specs from the grammar of docs/spec-language.md §11: valid-looking, mostly valid.

A spec that fails at its first token tests only the parser, so the generator keeps a
rough account of the tensor (channels, spatial size, layout) and picks layers that fit
it: pooling only while there is room, `add:` branches that keep the shape, an RNN only
on a sequence. Every feature of the language appears: headers, `param` lines, blocks
with arguments and defaults, `{expr}` placeholders, options (`/s2/p1/g4/nobias`), keyword
and positional calls, repeats (`x3`, `×2`, `* 2`, `x{n}`), named nodes and `@refs`,
`concat:`/`add:` branches, `residual:` with `shortcut:`, continuation lines and `=>`
expectations. Values are drawn mostly small, sometimes at the edges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ACTIVATIONS = ("relu", "relu6", "leaky-relu", "elu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu",
               "gelu", "lrelu", "swish", "h-swish", "logistic")
INDENTS = ("    ", "  ", "\t", "        ")


@dataclass
class Net:
    """What the generator knows about the tensor the next item receives."""

    kind: str  # "image" (C×H×W), "line" (C×L), "volume" (C×D×H×W), "pairs" (2-D, channels first),
    #            "seq" (T×F), "ids" (T), "flat" (F)
    channels: int
    size: int  # spatial size per axis (image, line, volume), or time steps (seq, ids)
    names: list[str] = field(default_factory=list)
    in_block: bool = False
    params: list[str] = field(default_factory=list)  # names usable in {expr}


def spec(rng: random.Random) -> str:
    """A whole spec: headers, parameters, blocks and a body; two in five in the language of the
    later issues (modern.py: inputs, sharing and ties, tensor ops, transformers, functions)."""
    if rng.random() < 0.4:
        from tests.fuzz import modern

        return modern.spec(rng)
    net, input_line = _input(rng)
    lines = [f"# generated {rng.randrange(10**6)}"]
    if rng.random() < 0.5:
        lines.append(f"name {rng.choice(['net', 'demo', 'gen-net', 'x_1', 'Ünïcode net'])}")
    params = _param_lines(rng, net)
    lines += params
    lines.append(input_line)
    if net.kind in ("image", "line", "volume", "flat") and rng.random() < 0.25:
        lines.append(f"hidden-activation {rng.choice(ACTIVATIONS[:6] + ('none',))}")
    blocks, block_lines = _blocks(rng, net)
    if rng.random() < 0.5:
        lines += block_lines
        block_lines = []
    for _ in range(rng.randint(1, 7)):
        lines += _statement(rng, net, blocks, depth=0, indent="")
    lines += block_lines  # definitions may come after their use
    if net.kind == "image" and rng.random() < 0.5:
        lines.append(rng.choice(["gap, fc-10", "flatten, FC-10", "adaptive-avgpool1, fc-10, soft-max"]))
    return "\n".join(lines) + ("\n" if rng.random() < 0.9 else "")


# -- headers -------------------------------------------------------------------------


def _input(rng: random.Random) -> tuple[Net, str]:
    kind = rng.choices(["image", "line", "volume", "seq", "ids", "flat"], [10, 2, 1, 2, 2, 2])[0]
    c = rng.choice([1, 3, 3, 8, 16, 64])
    s = rng.choice([1, 2, 7, 8, 16, 32, 32, 64, 224, 227])
    sep = rng.choice(["x", "x", "x", "×", ", "])
    if kind == "image":
        shape = sep.join(map(str, (c, s, s)))
    elif kind == "line":
        shape = sep.join(map(str, (c, s * 4)))
    elif kind == "volume":
        s = min(s, 16)
        shape = sep.join(map(str, (c, s, s, s)))
    elif kind == "seq":
        c, kind = rng.choice([8, 32, 300]), "pairs"
        shape = sep.join(map(str, (s, c)))
    elif kind == "ids":
        shape = str(s)
    else:
        c = rng.choice([10, 784, 4096])
        shape = str(c)
    if rng.random() < 0.1:
        shape = f"({shape})"
    return Net(kind, c, s), f"input {shape}"


def _param_lines(rng: random.Random, net: Net) -> list[str]:
    if rng.random() < 0.6:
        return []
    net.params = ["k", "n"]
    lines = [f"param k={rng.choice([8, 16, 32, 64])}, n={rng.randint(0, 3)}"]
    if rng.random() < 0.5:
        lines.append(rng.choice(["param half=k//2", "param w=k*2", "param e=2**3"]))
        net.params.append(lines[-1].split()[1].split("=")[0])
    return lines


# -- blocks --------------------------------------------------------------------------


def _blocks(rng: random.Random, net: Net) -> tuple[list[str], list[str]]:
    """Block definitions that keep a C×H×W shape (or halve it with s=2)."""
    if net.kind not in ("image", "line", "volume") or rng.random() < 0.4:
        return [], []
    ind = rng.choice(INDENTS)
    defs = {
        "cbr": [f"block cbr(c, k=3, s=1): conv{{k}}-{{c}}/s{{s}}/nobias, bn, {rng.choice(ACTIVATIONS[:4])}"],
        "unit": ["block unit(c):", f"{ind}conv3-{{c}}, relu", f"{ind}conv(k=1, c=c)"],
        "res": ["block res(c, s=1):", f"{ind}residual:", f"{ind}{ind}conv3-{{c}}/s{{s}}/nobias, bn, relu",
                f"{ind}{ind}conv3-{{c}}/nobias, bn", f"{ind}{rng.choice(['shortcut: auto', 'shortcut: auto', ''])}",
                f"{ind}relu"],
        "stage": ["block stage(n, c):", f"{ind}res(c, s=2)", f"{ind}res(c) x{{n-1}}"],
        "branch": ["block branch(c1, c2):", f"{ind}concat:", f"{ind}{ind}| conv1-{{c1}}",
                   f"{ind}{ind}| conv1-{{c2}}, conv3-{{c2}}", f"{ind}{ind}| maxpool3/s1/p1, conv1-{{c1}}"],
        "stem": ["block stem: conv3-16, bn, relu"],
    }
    chosen = rng.sample(sorted(defs), rng.randint(1, len(defs)))
    if "stage" in chosen and "res" not in chosen:
        chosen.append("res")
    lines = [line for name in chosen for line in defs[name] if line.strip()]
    return chosen, lines


def _block_call(rng: random.Random, name: str, net: Net) -> str:
    c = rng.choice([8, 16, 32, net.channels])
    calls = {
        "cbr": [f"cbr({c})", f"cbr({c}, k=1)", f"cbr(c={c}, s=2)", f"cbr({c}, 3, 1)"],
        "unit": [f"unit({c})", f"unit(c={c})"],
        "res": [f"res({c})", f"res({c}, s=2)", f"res(c={c}, s=1)"],
        "stage": [f"stage({rng.randint(1, 3)}, {c})", f"stage(n=2, c={c})"],
        "branch": [f"branch({c}, {c // 2 or 1})"],
        "stem": ["stem", "stem()"],
    }
    call = rng.choice(calls[name])
    if name in ("res", "stage") and "s=2" in call or name == "stage":
        net.size = max(1, (net.size + 1) // 2)
    net.channels = 16 if name == "stem" else c
    return call


# -- statements ----------------------------------------------------------------------


def _statement(rng: random.Random, net: Net, blocks: list[str], depth: int, indent: str) -> list[str]:
    roll = rng.random()
    if depth < 3 and net.kind in ("image", "line", "volume") and roll < 0.15:
        return _branches(rng, net, blocks, depth, indent)
    if depth < 3 and net.kind in ("image", "line", "volume") and roll < 0.25:
        return _residual(rng, net, blocks, depth, indent)
    items = [_item(rng, net, blocks) for _ in range(rng.randint(1, 4))]
    name = ""
    if rng.random() < 0.2 and not indent.startswith("|"):
        label = f"n{len(net.names)}"
        net.names.append(label)
        name = f"{label} = "
    line = indent + name + ", ".join(items)
    if rng.random() < 0.15:
        line += " => " + _claims(rng)
    if rng.random() < 0.1 and len(items) > 1:  # a continuation line
        first, rest = ", ".join(items[:1]), ", ".join(items[1:])
        return [f"{indent}{name}{first},", f"{indent}{rng.choice(INDENTS)}{rest}"]
    if rng.random() < 0.1:
        line += rng.choice(["  # a comment", ",", "\t# tab comment"])
    return [line]


def _branches(rng: random.Random, net: Net, blocks: list[str], depth: int, indent: str) -> list[str]:
    kind = rng.choice(["concat", "add"])
    ind = indent + rng.choice(INDENTS)
    lines = [f"{indent}{kind}:"]
    start = Net(net.kind, net.channels, net.size, net.names, net.in_block, net.params)
    for _ in range(rng.randint(1 if kind == "concat" else 2, 3)):
        branch = Net(start.kind, start.channels, start.size, net.names, net.in_block, net.params)
        if kind == "add":
            item = rng.choice(["", f"conv3-{start.channels}", "bn, relu", "identity", f"conv1-{start.channels}"])
        else:
            item = rng.choice([f"conv1-{rng.choice([4, 8, 16])}", "maxpool3/s1/p1", "avgpool3/s1/p1",
                               f"conv3-{rng.choice([4, 8])}, relu", ""])
        lines.append(f"{ind}| {item}".rstrip())
        if rng.random() < 0.15 and depth < 2:
            sub = _statement(rng, branch, blocks, depth + 1, ind + "  ")
            lines += sub
    net.channels = start.channels if kind == "add" else start.channels * 2
    return lines


def _residual(rng: random.Random, net: Net, blocks: list[str], depth: int, indent: str) -> list[str]:
    ind = indent + rng.choice(INDENTS)
    c = net.channels
    body = rng.choice([[f"conv3-{c}/nobias, bn, relu", f"conv3-{c}/nobias, bn"], [f"conv3-{c}, relu"],
                       [f"conv3-{c * 2}/s2, bn"], ["bn, relu", f"conv1-{c}"]])
    name = f"r{len(net.names)} = " if rng.random() < 0.2 else ""
    lines = [f"{indent}{name}residual:", *(ind + b for b in body)]
    shortcut = rng.choice(["", "", "shortcut: auto", "shortcut: identity", f"shortcut: conv1-{c * 2}/s2/nobias, bn"])
    if shortcut:
        lines.append(indent + shortcut)
    if "/s2" in body[0]:
        net.size, net.channels = max(1, (net.size + 1) // 2), c * 2
    return lines


# -- items ---------------------------------------------------------------------------


def _item(rng: random.Random, net: Net, blocks: list[str]) -> str:
    spatial = net.kind in ("image", "line", "volume")
    if blocks and spatial and rng.random() < 0.25:
        return _block_call(rng, rng.choice(blocks), net) + _repeat(rng, net, rare=True)
    if net.names and rng.random() < 0.08:
        return rng.choice(["@", "@"]) + rng.choice(net.names)
    if spatial:
        return _spatial_item(rng, net)
    if net.kind == "ids":
        net.kind, net.channels = "seq", rng.choice([16, 64, 300])
        return rng.choice([f"embedding(vocab=1000, dim={net.channels})", f"embedding1000x{net.channels}",
                           f"embed(vocab=50, dim={net.channels})/frozen"])
    if net.kind == "pairs":  # `input 35x650` is channels first until an RNN reads it as T×F
        net.kind = "seq"
        return rng.choice(["lstm-32", "gru-16/bi", "rnn-8", "lstm(hidden=8, layers=2)"])
    if net.kind == "seq":
        return _sequence_item(rng, net)
    return _flat_item(rng, net)


def _spatial_item(rng: random.Random, net: Net) -> str:
    roll = rng.random()
    c = rng.choice([4, 8, 16, 32, 64, 96, 128])
    if roll < 0.35:
        net.channels = c
        return _conv(rng, net, c) + _repeat(rng, net)
    if roll < 0.5 and net.size >= 2:
        net.size //= 2
        return rng.choice(["maxpool", "avgpool", "maxpool2", "maxpool3/s2/p1", "max-pool", "maxpool(3, 2, 1)",
                           "maxpool(k=3, s=2, ceil=true)", "avgpool3/s2/p1", "maxpool2/ceil"])
    if roll < 0.75:
        return rng.choice(["bn", "relu", "batchnorm", "bn(eps=0.001)", "dropout", "dropout0.2", "dropout(p=0.3)",
                           "lrn", "LRN", "identity", "id", "leaky-relu(slope=0.2)", "elu(alpha=0.5)",
                           *ACTIVATIONS]) + _repeat(rng, net)
    if roll < 0.8 and net.kind == "image":
        return rng.choice(["position-bias", "subsampling", f"table-conv3-2(table=\"0; {min(1, net.channels - 1)}\")",
                           "slice(0, 1)", "slice(1)", "softmax"])
    if roll < 0.9:
        net.kind, net.channels = "flat", rng.choice([10, 100, 4096])
        return rng.choice([f"fc-{net.channels}", f"FC-{net.channels}", f"linear(out={net.channels})",
                           f"dense({net.channels})", "gap", "gmp", "flatten", f"fc-{net.channels}/nobias"])
    if net.params:
        net.channels = 16
        return rng.choice(["conv3-{k}", "conv3-{k}/s{n+1}", "conv1-{2*k}", "conv3-{k//2}"]) + _repeat(rng, net)
    return rng.choice(["conv3-16(stride=2)", "conv3-16/s2(groups=2)", "conv(64, 3)", "conv(64, 3, 2, 1)",
                       "conv(out_channels=8, kernel_size=1x3)", "conv3x1-8", "adaptive-avgpool2", "gap"])


def _conv(rng: random.Random, net: Net, c: int) -> str:
    k = rng.choice([1, 3, 3, 3, 5, 7, 11])
    if net.kind == "image" and rng.random() < 0.1:
        return f"conv{rng.choice(['1x7', '7x1', '3x3'])}-{c}"
    opts = ""
    for opt in rng.sample(["/s2", "/p0", "/p1", "/d2", "/nobias", "/bias", "/g2", "/s2x1", "/stride=2", "/pad=1"],
                          rng.choice([0, 0, 1, 1, 2])):
        opts += opt
        if opt.startswith(("/s2", "/stride")):
            net.size = max(1, net.size // 2)
    if rng.random() < 0.2:
        return rng.choice([f"conv(k={k}, c={c}, stride=1)", f"conv({c}, {k})", f"conv{k}-{c}(stride=1)",
                           f"Conv{k}-{c}/S1", f"conv(c={c}, {k})"])
    return f"conv{k}-{c}{opts}"


def _sequence_item(rng: random.Random, net: Net) -> str:
    h = rng.choice([8, 32, 650])
    roll = rng.random()
    if roll < 0.4:
        net.channels = h
        return rng.choice([f"lstm-{h}", f"gru-{h}", f"rnn-{h}", f"lstm(hidden={h}, layers=2, dropout=0.5)",
                           f"gru-{h}/bi", f"rnn-{h}/relu", f"lstm-{h}/l2", f"gru(hidden={h}, dropout=0.3)"])
    if roll < 0.55:
        net.kind = "line"
        return "to-channels"
    if roll < 0.7:
        net.kind = "flat"
        return "last"
    if roll < 0.85:
        net.channels = h
        return f"fc-{h}"
    return rng.choice(["relu", "dropout", "softmax", "transpose", "tanh"])


def _flat_item(rng: random.Random, net: Net) -> str:
    n = rng.choice([2, 10, 84, 100, 1000, 4096])
    roll = rng.random()
    if roll < 0.6:
        net.channels = n
        return rng.choice([f"fc-{n}", f"FC-{n}", f"linear-{n}", f"dense({n})", f"fully-connected({n})",
                           f"fc-{n}/nobias", f"rbf-{n}", f"fc(out={n}, bias=false)"])
    return rng.choice(["relu", "dropout", "soft-max", "tanh", "bn", "identity", "dropout.2"])


def _repeat(rng: random.Random, net: Net, rare: bool = False) -> str:
    if rng.random() > (0.05 if rare else 0.12):
        return ""
    if net.params and rng.random() < 0.4:
        return rng.choice([" x{n}", " x{n+1}", " ×{n}"])
    return rng.choice([" x2", " x3", " ×2", " * 2", " x1"])


def _claims(rng: random.Random) -> str:
    picks = rng.sample([
        "55x55x96", "96x55x55", "params=1792", "weights=1_728", "biases=64", "buffers=0", "macs=1_000",
        "flops=2000", "macs≈105.4M", "macs~1.2K", "rf=3", "rf=3x3", "rf=global", "total params≈61M",
        "total macs=1000", "out=64x32x32", "shape=10", "params=34_944", "10",
    ], rng.randint(1, 3))
    return ", ".join(picks)
