"""Receptive fields past a layer that goes up in resolution, against the gradient of real torch modules.

The static field (`RF.window(axis, u)`: the first and last input position unit u sees) must be
exactly the span of input positions whose gradient is nonzero for that unit, for *every* unit:
nn.ConvTranspose1d/2d with strides, paddings, output paddings, dilations and groups,
compositions with strided convolutions, every interpolation mode of nn.Upsample, pixel shuffle,
crops, max unpooling (probed through its stand-in) and U-Net itself. Weights are positive
(1/fan-in), so no path cancels. Near a border a path may run through a layer's padding, where the
field counts positions as if the input went on; there the gradient is compared with the
positions the layers' windows reach within bounds instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.graph import LayerGraph  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.passes.receptive_field import RF  # noqa: E402
from archcalc.pytorch.rf_probe import _gradient_model  # noqa: E402

Window = tuple[int, int] | None


def gradient_windows(model: torch.nn.Module, shape: Sequence[int], axis: int = 0,
                     units: int | None = None) -> list[Window]:
    """Per output unit along `axis` (the others at their centre), the first and last input position
    with a nonzero gradient. One backward pass: sample b of a batch is unit b's."""
    with torch.no_grad():
        sizes = model(torch.zeros(1, *shape, dtype=torch.float64)).shape[2:]
    count = sizes[axis] if units is None else units
    x = (torch.rand(count, *shape, dtype=torch.float64) + 0.5).requires_grad_()
    out = model(x)
    centre = [(o - 1) // 2 for o in sizes]
    picked = []
    for u in range(count):
        index = [u, slice(None), *centre]
        index[2 + axis] = u
        picked.append(out[tuple(index)].sum())
    (grad,) = torch.autograd.grad(torch.stack(picked).sum(), x)
    found: list[Window] = []
    for u in range(count):
        line = grad[u].abs().sum(dim=tuple(d for d in range(len(shape)) if d != 1 + axis))
        hits = line.nonzero().flatten().tolist()
        found.append((hits[0], hits[-1]) if hits else None)
    return found


def expected_windows(graph: LayerGraph, axis: int = 0) -> list[Window]:
    """archcalc's field of each unit of the last node; by the layers' windows within bounds where a
    path passes padding (the field counts padding positions as input)."""
    rf = analyze(graph).rf[len(graph) - 1]
    assert isinstance(rf, RF), rf
    last = graph.node(len(graph) - 1)
    out: list[Window] = []
    for u in range(last.shape[1 + axis]):
        here, clean = {u}, True
        for n in reversed(list(graph)[1:]):
            g = n.layer.geometry(n.args, n.in_shapes)
            if g is None:
                continue
            every = {q for o in here for q in g.reads(axis, o)}  # type: ignore[union-attr]
            here = {q for q in every if 0 <= q < n.in_shapes[0][1 + axis]}
            clean &= here == every
        out.append(rf.window(axis, u) if clean else ((min(here), max(here)) if here else None))
    return out


def check(text: str, axis: int = 0) -> RF:
    graph = archcalc.load_text(text, "t.arch")
    model = _gradient_model(graph)
    assert model is not None
    model = model.double().eval()
    assert gradient_windows(model, graph.input.shape, axis) == expected_windows(graph, axis), text
    rf = analyze(graph).rf[len(graph) - 1]
    assert isinstance(rf, RF)
    return rf


# -- one transposed convolution, every unit -----------------------------------------------------


@pytest.mark.parametrize("layer", [
    "convtranspose2-1/s2", "convtranspose3-1/s2/p1", "convtranspose3-1/s2/p1/op1", "convtranspose4-1/s2/p1",
    "convtranspose5-1/s3/p2/op2", "convtranspose1-1/s3", "convtranspose3-1/d2", "convtranspose3-1/s2/d2/op1",
    "convtranspose4-2/s2/p1/g2", "convtranspose7-1/p3", "convtranspose2-1/s3/p1",
])
def test_a_transposed_convolution_sees_what_its_gradient_says(layer: str) -> None:
    check(f"input 2x11x9\n{layer}\n", 0)
    check(f"input 2x11x9\n{layer}\n", 1)


def test_the_transposed_window_against_a_plain_nn_convtranspose2d() -> None:
    # independent of archcalc's builder: a ConvTranspose2d of ones, k 3, stride 2, padding 1
    m = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, bias=False).double()
    with torch.no_grad():
        m.weight.fill_(1.0)
    rf = archcalc.analyze("input 1x7x7\nconvtranspose3-1/s2/p1\n").rf[1]
    assert isinstance(rf, RF)
    # unit 2q reads input q only, unit 2q + 1 reads q and q + 1: period 2, jump 1/2
    assert (rf.size, rf.jump, rf.start, rf.period(0)) == ((2, 2), (Fraction(1, 2),) * 2, (0, 0), 2)
    assert [rf.window(0, u) for u in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    grads = gradient_windows(m, (1, 7, 7))
    assert grads == [rf.window(0, u) for u in range(12)] + [(6, 6)]  # the last: input 7 is past the border


def test_inserted_zeros_only_is_no_field() -> None:
    # stride 2, dilation 2: odd outputs read only inserted zeros; a stride-2 dilated conv after it
    # reads only those: its output depends on no input at all
    fields = archcalc.analyze("input 1x21\nconvtranspose4-1/s2/d2\nconv2-1/s2/p1/d2\n").rf
    assert isinstance(fields[1], RF) and fields[1].window(0, 1) is None
    assert fields[2] == "none"


# -- compositions, every unit -------------------------------------------------------------------


def _random_chain(rng: random.Random) -> str:
    lines = [f"input 1x{rng.randint(6, 24)}"]
    for _ in range(rng.randint(2, 4)):
        d = rng.choice([1, 1, 2])
        k = rng.randint(1, 4)
        s = rng.randint(1, 3)
        if rng.random() < 0.4:
            lines.append(f"conv{k}-1/s{s}/p{rng.randint(0, k // 2)}/d{d}/nobias")
        elif rng.random() < 0.7:
            lines.append(f"convtranspose{k}-1/s{s}/p{rng.randint(0, k - 1)}/op{rng.randint(0, max(s, d) - 1)}"
                         f"/d{d}/nobias")
        else:
            mode = rng.choice(["nearest", "nearest-exact", "linear"])
            align = ", align_corners=true" if mode == "linear" and rng.random() < 0.5 else ""
            lines.append(f"upsample(size={rng.randint(2, 40)}, mode={mode}{align})")
    return "\n".join(lines) + "\n"


def test_compositions_of_strided_and_transposed_convolutions_and_upsampling() -> None:
    rng, checked = random.Random(14), 0
    while checked < 40:
        text = _random_chain(rng)
        try:
            graph = archcalc.load_text(text, "t.arch")
        except archcalc.errors.SpecError:
            continue  # a size that does not fit (the chain is random)
        if not isinstance(analyze(graph).rf[len(graph) - 1], RF):
            continue  # global (one unit sees all) or none (only inserted zeros)
        check(text)
        checked += 1


@pytest.mark.parametrize("layer", [
    "upsample2", "upsample(scale=3)", "upsample(scale=2.5)", "upsample(size=17x9)", "upsample(size=4x3)",
    "upsample(scale=2, mode=nearest-exact)", "upsample(size=17x13, mode=nearest-exact)",
    "upsample2/bilinear", "upsample(scale=3, mode=bilinear)", "upsample(size=17x20, mode=bilinear)",
    "upsample(size=17x20, mode=bilinear, align_corners=true)", "upsample(size=5x4, mode=bilinear)",
    "upsample(scale=2, mode=bicubic)", "upsample(size=15x22, mode=bicubic, align_corners=true)",
])
def test_interpolation_sees_what_its_gradient_says(layer: str) -> None:
    text = f"input 2x7x9\nconv3-2/s2/p1\n{layer}\nconv3-2\n"
    check(text, 0)
    check(text, 1)


def test_pixel_shuffle_crop_and_max_unpooling() -> None:
    check("input 4x12x12\nconv3-8\npixel-shuffle(2)\nconv3-4/s2/p1\npixel-unshuffle(2)\ncrop(size=5x4)\nconv3-4\n")
    # the unpool's stand-in spreads each pooled unit over its window (the max pool is probed as an
    # average pool): the field is every position whose window the unit's value can come from
    rf = check("input 2x15x15\np = maxpool3/s2\nx = conv3-2\nmaxunpool(@x, @p)\nconv3-2\n", 0)
    assert rf.jump == (1, 1)


def test_unet_every_output_row_sees_what_its_gradient_says() -> None:
    # U-Net at width 1 on 252×252 (the same geometry, 68 output rows): units 0 … 47 cover three
    # periods of 16; each sees 188 or 204 input rows
    graph = archcalc.load("unet", (1, 252, 252), params={"width": 1})
    model = _gradient_model(graph)
    assert model is not None
    rf = analyze(graph).rf[len(graph) - 1]
    assert isinstance(rf, RF) and graph.output.shape == (2, 68, 68)
    found = gradient_windows(model.double().eval(), graph.input.shape, 0, units=48)
    assert found == [rf.window(0, u) for u in range(48)]
    assert {rf.window(0, u)[1] - rf.window(0, u)[0] + 1 for u in range(16)} == {188, 204}  # type: ignore[index]
