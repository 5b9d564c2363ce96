"""Random valid specs: archcalc's static figures must equal the model PyTorch builds.

Hypothesis writes spec text — chains and small DAGs (residual, concat, add and gate
branches) of the registered layer types, on 1-D, 2-D and 3-D inputs (and flat
features) — with random kernels, strides, paddings, dilations, groups, biases and
ceil_mode pooling; and the language's general operations: layers applied again with
shared weights, free parameters broadcast into element-wise ops, transposes and
permutes, reshapes, matmuls of two activations, reductions, TF-SAME padding and pads,
and specs with two inputs. Specs the static side rejects with a SpecError are skipped; every
accepted spec is built and run, and shapes, parameters, buffers and FLOPs must agree
per layer. A spec archcalc accepts but torch cannot build or run fails the test too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from archcalc import load_text  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.pytorch.verify import verify  # noqa: E402

ACTIVATIONS = ("relu", "relu6", "leaky-relu(slope=0.2)", "sigmoid", "tanh", "hardswish", "hardsigmoid",
               "silu", "gelu", "softmax", "gelu/tanh", "hardtanh", "prelu", "prelu/c", "log-softmax", "abs", "elu",
               "elu(alpha=0.5)")


@dataclass
class Tensor:
    """What the generator tracks: channels (or features) and the spatial rank (0 = flat)."""

    channels: int
    rank: int
    grown: int = 0  # layers that went up in resolution (bounded, so no spec grows without end)


def _size(draw: st.DrawFn, rank: int, lo: int, hi: int) -> str:
    """A size argument: one number, or one per axis ('1x3')."""
    if rank >= 2 and draw(st.booleans()):
        return "x".join(str(draw(st.integers(lo, hi))) for _ in range(rank))
    return str(draw(st.integers(lo, hi)))


def conv(draw: st.DrawFn, t: Tensor, keep_size: bool) -> str:
    groups = draw(st.sampled_from([g for g in range(1, t.channels + 1) if t.channels % g == 0]))
    out = groups * draw(st.integers(1, 3))
    args = [f"c={out}", f"groups={groups}"]
    if keep_size:  # odd kernels, stride 1, default ('same') padding: branches stay aligned
        args += [f"k={draw(st.sampled_from([1, 3]))}", f"d={draw(st.integers(1, 2))}"]
    else:
        args += [f"k={_size(draw, t.rank, 1, 4)}", f"stride={_size(draw, t.rank, 1, 3)}",
                 f"d={_size(draw, t.rank, 1, 2)}"]
        if draw(st.booleans()):
            args.append(f"pad={_size(draw, t.rank, 0, 2)}")
    if draw(st.booleans()):
        args.append("bias=false")
    t.channels = out
    return f"conv({', '.join(args)})"


def pool(draw: st.DrawFn, t: Tensor, keep_size: bool) -> str:
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    ceil = "/ceil" if draw(st.booleans()) else ""
    if keep_size:
        return f"{kind}3/s1/p1{ceil}"
    if t.rank >= 2 and draw(st.booleans()):  # keyword form, sizes per axis
        ks, ss, ps = (_size(draw, t.rank, lo, hi) for lo, hi in ((1, 4), (1, 3), (0, 2)))
        return f"{kind}(k={ks}, s={ss}, p={ps}, ceil_mode={'true' if ceil else 'false'})"
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))  # may break PyTorch's p ≤ k/2: archcalc must say so
    return f"{kind}{k}/s{s}/p{p}{ceil}"


def adaptive(draw: st.DrawFn, t: Tensor) -> str:
    kind = draw(st.sampled_from(["adaptive-avgpool", "adaptive-maxpool"]))
    return f"{kind}(size={_size(draw, t.rank, 1, 3)})"


def same(draw: st.DrawFn, t: Tensor) -> str:
    """TensorFlow's SAME padding: a conv or a max pool whose output is ⌈I/S⌉."""
    stride = _size(draw, t.rank, 1, 3)
    if draw(st.booleans()):
        return f"maxpool{draw(st.integers(1, 4))}/s{draw(st.integers(1, 3))}/same"
    t.channels = draw(st.integers(1, 6))
    return f"conv(k={_size(draw, t.rank, 1, 4)}, c={t.channels}, s={stride}, same=true)"


def moves(draw: st.DrawFn, t: Tensor) -> str:
    """A layer that only moves elements and keeps the rank: a transpose, a permute, a pad."""
    full = t.rank + 1  # PyTorch dims after the batch
    pick = draw(st.sampled_from(["transpose", "permute", "pad"]))
    if pick == "transpose":
        a, b = draw(st.integers(1, full)), draw(st.integers(1, full))
        if (a == 1) != (b == 1):
            t.channels = -1  # the channels moved: only rank-keeping layers that read any size follow
        return f"transpose({a}, {b})"
    if pick == "permute":
        order = [1, *draw(st.permutations(list(range(2, full + 1))))]
        return f"permute(0, {', '.join(map(str, order))})"
    pads = [draw(st.integers(0, 2)) for _ in range(2 * draw(st.integers(1, t.rank)))]
    return f"pad({', '.join(map(str, pads))}{', mode=replicate' if draw(st.booleans()) else ''})"


def simple(draw: st.DrawFn, t: Tensor, keep_size: bool) -> str:
    """One layer that keeps the tensor's rank."""
    if t.channels < 0:  # the channels moved away: only layers that read any size
        return draw(st.sampled_from(["identity", "relu", "dropout", "sigmoid"]))
    choices = ["bn", "act", "dropout", "identity", "lrn", "stochastic-depth"]
    if t.rank == 0:
        choices += ["fc"]
    else:
        choices += ["conv", "conv", "pool", "pool", "pool", "slice", "shuffle"]
        choices += [] if keep_size else ["adaptive", "same"]
    pick = draw(st.sampled_from(choices))
    if pick == "same":
        return same(draw, t)
    if pick == "bn":
        return draw(st.sampled_from(["bn", "bn(affine=false)", "batchnorm(eps=0.001)"]))
    if pick == "act":
        return draw(st.sampled_from(ACTIVATIONS))
    if pick == "dropout":
        return draw(st.sampled_from(["dropout", "dropout(p=0.2)"]))
    if pick == "lrn":
        return f"lrn(size={draw(st.integers(1, 5))})"
    if pick == "stochastic-depth":
        return draw(st.sampled_from(["stochastic-depth(p=0.2)", "stochastic-depth(p=0.5, mode=batch)"]))
    if pick == "shuffle":
        groups = draw(st.sampled_from([g for g in range(1, t.channels + 1) if t.channels % g == 0]))
        return f"channel-shuffle(groups={groups})"
    if pick == "fc":
        t.channels = draw(st.integers(1, 12))
        return f"fc-{t.channels}" + draw(st.sampled_from(["", "/nobias"]))
    if pick == "conv":
        return conv(draw, t, keep_size)
    if pick == "pool":
        return pool(draw, t, keep_size)
    if pick == "adaptive":
        return adaptive(draw, t)
    if pick == "slice":
        start = draw(st.integers(0, t.channels - 1))
        end = draw(st.integers(start + 1, t.channels))
        to_last = end == t.channels and draw(st.booleans())
        t.channels = end - start
        return f"slice({start})" if to_last else f"slice({start}, {end})"
    return pick


def chain(draw: st.DrawFn, t: Tensor, keep_size: bool, max_len: int = 3) -> str:
    return ", ".join(layer(draw, t, keep_size) for _ in range(draw(st.integers(1, max_len))))


def layer(draw: st.DrawFn, t: Tensor, keep_size: bool) -> str:
    """Mostly `simple`; now and then a layer that goes up in resolution (or an instance norm)."""
    if t.rank > 0 and t.channels > 0 and draw(st.integers(0, 4)) == 0:  # not after the channels moved
        return up(draw, t, keep_size)
    return simple(draw, t, keep_size)


def up(draw: st.DrawFn, t: Tensor, keep_size: bool) -> str:
    """A transposed convolution, an interpolation, a pixel shuffle or an instance norm."""
    kinds = ["convtranspose", "instancenorm"] + ([] if keep_size else ["upsample"]) + (
        ["pixel"] if t.rank == 2 and not keep_size else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "instancenorm":
        return draw(st.sampled_from(["instancenorm", "instancenorm/affine", "instancenorm/track",
                                     "instance-norm(affine=true, track_running_stats=true)"]))
    if kind == "convtranspose":
        groups = draw(st.sampled_from([g for g in range(1, t.channels + 1) if t.channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        args = [f"c={out}", f"g={groups}"]
        if keep_size:  # stride 1, padding D·(K − 1)/2: the size stays
            k, d = draw(st.sampled_from([1, 3])), draw(st.integers(1, 2))
            args += [f"k={k}", f"d={d}", f"p={d * (k - 1) // 2}"]
        else:
            grow = t.rank < 3 and t.grown < 2
            s, d = draw(st.integers(1, 2 if grow else 1)), draw(st.integers(1, 2))
            args += [f"k={_size(draw, t.rank, 1, 3)}", f"s={s}", f"d={d}", f"p={draw(st.integers(0, 2))}",
                     f"op={draw(st.integers(0, max(s, d) - 1))}"]
            t.grown += s > 1
        if draw(st.booleans()):
            args.append("bias=false")
        t.channels = out
        return f"convtranspose({', '.join(args)})"
    if kind == "pixel":
        if t.channels % 4 == 0 and draw(st.booleans()):
            t.channels //= 4
            return "pixel-shuffle(2)"
        t.channels *= 4
        return "pixel-unshuffle(2)"  # H and W may be odd: archcalc refuses it, as PyTorch does
    modes = {1: ["nearest", "nearest-exact", "linear"], 2: ["nearest", "bilinear", "bicubic"],
             3: ["nearest", "trilinear"]}[t.rank]
    mode = draw(st.sampled_from(modes))
    align = ", align_corners=true" if mode not in ("nearest", "nearest-exact") and draw(st.booleans()) else ""
    if draw(st.booleans()):
        return f"upsample(size={_size(draw, t.rank, 1, 9 if t.rank < 3 else 5)}, mode={mode}{align})"
    return f"upsample(scale={draw(st.sampled_from(['0.5', '1', '1.5', '2']))}, mode={mode}{align})"


def step(draw: st.DrawFn, t: Tensor, pad: str, names: list[int]) -> list[str]:
    """Lines for one statement: a chain, or (on spatial tensors) a branching structure."""
    kinds = ["chain", "chain", "shared", "free", "rare"] + (
        ["residual", "concat", "add", "gate", "moves", "matmul"] if t.rank > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "rare":
        return rare(draw, t, pad, names)
    if kind == "chain":
        return [pad + chain(draw, t, keep_size=False)]
    if kind == "shared":  # one layer made once and applied again: its weights counted once
        n = len(names)
        names.append(n)
        layer = f"conv(k=3, c={t.channels})" if t.rank > 0 else f"fc-{t.channels}"
        return [pad + f"{layer} as w{n}, {draw(st.sampled_from(ACTIVATIONS[:6]))}, w{n}"]
    if kind == "free":  # a free parameter broadcast into an element-wise op
        n = len(names)
        names.append(n)
        shape = "x".join([str(t.channels)] + ["1"] * t.rank)
        op = draw(st.sampled_from(["add", "mul", "sub", "div"]))
        return [pad + f"x{n} = identity", pad + f"p{n} = parameter({shape})", pad + f"{op}(@x{n}, @p{n})"]
    if kind == "moves":
        return [pad + moves(draw, t) + ", " + draw(st.sampled_from(["relu", "identity", "sigmoid"]))]
    if kind == "matmul":  # an attention-like product of a tensor with its own transpose, then reduced
        n = len(names)
        names.append(n)
        t.rank = 0
        return [pad + f"x{n} = flatten(2)", pad + f"xt{n} = @x{n}, transpose(1, 2)",
                pad + f"matmul(@x{n}, @xt{n}), softmax(dim=-1), mean(-1)"]
    if kind == "residual":
        body = Tensor(t.channels, t.rank)
        lines = [pad + "residual:", pad + "    " + chain(draw, body, keep_size=draw(st.booleans()))]
        shortcut = draw(st.sampled_from(["auto", "identity"]))
        t.channels = body.channels
        return [*lines, pad + f"shortcut: {shortcut}"]
    if kind == "concat":
        lines, total = [pad + "concat:"], 0
        for _ in range(draw(st.integers(1, 3))):
            branch = Tensor(t.channels, t.rank)
            lines.append(pad + "    | " + chain(draw, branch, keep_size=True, max_len=2))
            total += branch.channels
        t.channels = total
        return lines
    if kind == "add":
        width = draw(st.integers(1, 6))
        lines = [pad + "add:"]
        for _ in range(draw(st.integers(2, 3))):
            branch = Tensor(t.channels, t.rank)
            lead = chain(draw, branch, keep_size=True, max_len=2)
            lines.append(pad + f"    | {lead}, conv(k=1, c={width})")
        t.channels = width
        return lines
    # a squeeze-and-excitation gate: x · sigmoid(conv1(gap(x)))
    n = len(names)
    names.append(n)
    return [pad + f"x{n} = identity",
            pad + f"g{n} = @x{n}, gap, conv(k=1, c={t.channels}), sigmoid",
            pad + f"mul(@x{n}, @g{n})"]


def rare(draw: st.DrawFn, t: Tensor, pad: str, names: list[int]) -> list[str]:
    """The layer types a chain of `simple` layers does not reach (tests/test_property_coverage.py
    fails when a registered type is in no generator): norms, LeNet-5's layers, recurrent layers
    on a C×L tensor, reshapes and reductions, chunk/split, a projected shortcut, patch merging."""
    n = len(names)
    names.append(n)
    if t.rank == 0 or t.channels < 0:
        t.channels = draw(st.integers(1, 6))
        return [pad + f"rbf-{t.channels}" + draw(st.sampled_from(["", "/trainable"]))]
    kinds = ["norm", "sum", "squeeze", "reshape", "chunk", "split", "auto", "auto", "unpool", "crop", "se"]
    kinds += ["recurrent", "recurrent", "recurrent", "last"] * 2 if t.rank == 1 else []
    kinds += ["lenet", "table", "merge", "ln2d", "shuffle"] * 2 if t.rank == 2 else []
    kind = draw(st.sampled_from(kinds))
    c = t.channels
    if kind == "norm":
        return [pad + f"groupnorm({draw(st.sampled_from([g for g in range(1, c + 1) if c % g == 0]))})"]
    if kind == "unpool":  # max unpooling puts values back where its pool found the maxima
        return [pad + f"x{n} = maxpool1/s1", pad + f"maxunpool(@x{n}, @x{n})"]
    if kind == "crop":  # U-Net's centre crop of a bigger map to a skip's size
        return [pad + f"x{n} = identity", pad + f"u{n} = upsample(scale=2)", pad + f"crop(@u{n}, @x{n})"]
    if kind == "se":
        return [pad + f"se-{draw(st.integers(1, max(1, c)))}" + draw(st.sampled_from(["", "/silu", "/hardsigmoid"]))]
    if kind == "shuffle":
        return [pad + f"conv(k=1, c={4 * c}), pixel-shuffle(2)"]
    if kind == "ln2d":
        return [pad + draw(st.sampled_from(["layernorm2d", "layernorm2d(eps=1e-5)"]))]
    if kind == "sum":  # a reduction broadcast back: x · sum over the channels
        return [pad + f"x{n} = identity", pad + f"s{n} = @x{n}, sum(1, keepdim=true)", pad + f"mul(@x{n}, @s{n})"]
    if kind == "squeeze":
        return [pad + f"unsqueeze(1), squeeze(1), {draw(st.sampled_from(ACTIVATIONS))}"]
    if kind == "reshape":
        t.rank = 1
        return [pad + f"reshape({c}, -1)"]
    if kind in ("chunk", "split"):
        w = draw(st.integers(1, 4))
        t.channels = w
        cut = "chunk(2, dim=1)" if kind == "chunk" else f"split({w}, dim=1)"
        return [pad + f"x{n} = conv(k=1, c={2 * w})", pad + f"a{n}, b{n} = @x{n}, {cut}",
                pad + f"{draw(st.sampled_from(['add', 'sub', 'mul']))}(@a{n}, @b{n})"]
    if kind == "auto":  # a body that changes the shape: `shortcut: auto` projects the input
        t.channels = c + draw(st.integers(1, 3))
        return [pad + "residual:", pad + f"    conv(k=1, c={t.channels}, stride={draw(st.integers(1, 2))})",
                pad + "shortcut: auto"]
    if kind in ("recurrent", "last"):
        h = draw(st.integers(1, 5))
        cell = draw(st.sampled_from(["lstm", "gru", "rnn"])) + f"-{h}"
        cell += draw(st.sampled_from(["", "/bi", "/relu" if cell.startswith("rnn") else "/l2"]))
        t.channels = 2 * h if "/bi" in cell else h
        if kind == "last":
            t.rank = 0
            return [pad + f"to-sequence, {cell}, last"]
        return [pad + f"to-sequence, {cell}, to-channels"]
    if kind == "lenet":
        return [pad + draw(st.sampled_from(["position-bias", "subsampling", "subsampling(k=1, s=1)"]))]
    if kind == "table":
        t.channels = 2
        return [pad + f'table-conv1-2(table="0; {c - 1}")']
    t.channels = 4 * c  # Swin's patch merging, channels last: 2×2 neighbours side by side
    return [pad + "permute(0, 2, 3, 1), patch-merging, permute(0, 3, 1, 2)"]


@st.composite
def specs(draw: st.DrawFn) -> str:
    rank = draw(st.sampled_from([0, 1, 2, 2, 3, 1]))
    channels = draw(st.integers(1, 6))
    sizes = [draw(st.integers(1, 12 if rank < 3 else 6)) for _ in range(rank)]
    shape = "x".join(map(str, [channels, *sizes]))
    if draw(st.integers(0, 3)) == 0:  # two inputs, joined by one layer applied to both
        layer = "conv(k=1, c=3)" if rank > 0 else "fc-3"
        lines = [f"input a {shape}", f"input b {shape}", f"x = @a, {layer} as shared", "y = @b, shared",
                 draw(st.sampled_from(["add(@x, @y)", "sub(@x, @y), abs", "mul(@x, @y)"]))]
        channels = 3
    else:
        lines = ["input " + shape]
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"hidden-activation {draw(st.sampled_from(['relu', 'tanh', 'none']))}")
    t, names = Tensor(channels, rank), []  # type: ignore[var-annotated]
    if draw(st.booleans()):
        lines += rare(draw, t, "", names)
    for _ in range(draw(st.integers(1, 5))):
        lines += step(draw, t, "", names)
    if t.rank > 0 and draw(st.booleans()):
        lines.append(draw(st.sampled_from(["gap, fc-5", "flatten, fc-3/nobias", "gmp, fc-7, softmax"])))
    return "\n".join(lines) + "\n"


def check(text: str) -> None:
    try:
        graph = load_text(text, "random.arch")
    except SpecError:
        assume(False)
        return
    report = verify(graph, "cpu", batch=2, runs=0)
    wrong = "\n".join(f"  node {c.node} {c.scope} '{c.text}': {c.what} archcalc {c.archcalc} "
                      f"!= torch {c.torch}" for c in report.failures)
    assert report.ok, f"archcalc and torch disagree on\n{text}{wrong}"


SLOW_OR_FILTERED = [HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.data_too_large]


# the long run (docs/fuzzing.md): ARCHCALC_PROPERTY_EXAMPLES=1000 pytest tests/test_property.py --hypothesis-seed=N
EXAMPLES = int(os.environ.get("ARCHCALC_PROPERTY_EXAMPLES", "60"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_OR_FILTERED)
@given(specs())
# cases that were wrong once (kept so they stay right)
@example("input 1x1x1\nmaxpool2/s2/p0/ceil\n")  # ceil_mode: one window that starts inside the input
@example("input 2x5\nmaxpool2/s2/p1/ceil\n")
@example("input 3x7x7\navgpool3/s2/p1/ceil, maxpool2/s2/p1/ceil\n")
@example("input 4\nlrn(size=3)\n")  # torch's LRN needs a spatial axis: archcalc must reject it
@example("input 2x3x3\nconv(c=4, groups=2, k=2, stride=2, d=1, pad=1), slice(1, 3)\n")
@example("input 2x5x4\nconvtranspose(c=4, g=2, k=3, s=2, p=1, op=1), upsample(size=3x7, mode=bicubic)\n")
@example("input 3x4x6\nx = maxpool\nconv3-3\ny = identity\nmaxunpool(@y, @x), pixel-unshuffle(2), instancenorm\n")
# a conv reading a sequence (transpose(1, 2) of a C×L map) windows its features: the field is unknown
@example("input 2x2\nhidden-activation relu\nbn\ntranspose(1, 2), relu\nadd:\n    | identity, conv(k=1, c=1)\n"
         "    | identity, conv(k=1, c=1)\n")
# the probe's expected window took replicate/reflect/circular padding for zeros (the long run found it)
@example("input 1x1\npad(0, 2, mode=replicate), relu\n")
@example("input 2x5\npad(3, 2, mode=reflect), relu\n")
@example("input 1x1x2\npermute(0, 2, 3, 1), patch-merging, permute(0, 3, 1, 2)\nx1 = identity\n")  # H×W×C axes
def test_random_specs_agree_with_torch(text: str) -> None:
    check(text)


@pytest.mark.parametrize("layer, cls", [("maxpool", "MaxPool1d"), ("avgpool", "AvgPool1d"),
                                        ("conv", "Conv1d")])
def test_window_rule_equals_torch_exhaustively(layer: str, cls: str) -> None:
    """Every small (size, kernel, stride, padding, ceil_mode | dilation): same size, or both refuse."""
    import itertools

    from archcalc.layers import REGISTRY
    from archcalc.layers.base import LayerArgError

    rule, module = REGISTRY[layer], getattr(torch.nn, cls)
    extra = (1, 2) if layer == "conv" else (False, True)  # dilation, or ceil_mode
    for size, k, s, p, e in itertools.product(range(1, 8), range(1, 5), range(1, 4), range(3), extra):
        raw = {"kernel": (k,), "stride": (s,), "padding": (p,)}
        if layer == "conv":
            args = rule.normalize({**raw, "out_channels": 1, "dilation": (e,)})
            make: tuple[Any, tuple[int, ...], dict[str, Any]] = (module, (1, 1, k, s, p, e), {})
        else:
            args = rule.normalize({**raw, "ceil_mode": e})
            make = (module, (k, s, p), {"ceil_mode": e})
        try:
            ours: tuple[int, ...] | None = rule.shape(args, [(1, size)]).shape[1:]
        except LayerArgError:
            ours = None
        try:
            built = make[0](*make[1], **make[2])
            theirs: tuple[int, ...] | None = tuple(built(torch.zeros(1, 1, size)).shape[2:])
        except (RuntimeError, ValueError):
            theirs = None
        what = "dilation" if layer == "conv" else "ceil"
        assert ours == theirs, f"{layer} size={size} k={k} s={s} p={p} {what}={e}"
