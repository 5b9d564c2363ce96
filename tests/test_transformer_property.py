"""Random transformer stacks: archcalc's static figures must equal the model PyTorch builds.

Hypothesis writes sequence specs — embeddings and positions, then pre- or post-norm residual
blocks of attention (any layout, heads, kv_heads, head_dim, width, biases, causal, rotary) and
MLPs (any activation, gated or not, Conv1D or Linear), norms, dropout and layer scale — and every
accepted spec is built and run at batch 2: shapes, parameters, buffers and FLOPs must agree per
layer. A spec archcalc accepts but torch cannot build or run fails the test too.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from archcalc import load_text  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.pytorch.verify import verify  # noqa: E402

LAYOUTS = ("separate", "fused", "mha", "conv1d")
ACTS = ("gelu", "gelu-tanh", "relu", "silu", "tanh", "sigmoid")


@st.composite
def attention(draw: st.DrawFn, width: int, rotary: int, name: str) -> str:
    """An attention layer reading @name (and @rope), keeping the width so that the residual adds."""
    heads = draw(st.sampled_from([h for h in (1, 2, 3, 4, 6, 8) if width % h == 0]))
    layout = draw(st.sampled_from(LAYOUTS))
    args = [f"heads={heads}", f"layout={layout}"]
    head_dim = width // heads
    if layout != "mha":
        args.append(f"kv_heads={draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))}")
        if draw(st.booleans()):
            head_dim = draw(st.integers(1, 6)) * 2
            args.append(f"head_dim={head_dim}")
    if draw(st.booleans()):
        args.append(f"out_bias={draw(st.sampled_from(['true', 'false']))}")
    head = "attention" + "".join(f"/{f}" for f in ("nobias", "causal") if draw(st.booleans()))
    if rotary and rotary <= head_dim and draw(st.booleans()):
        return f"{head}/rope(@{name}, @rope, {', '.join(args)})"
    return f"{head}(@{name}, {', '.join(args)})"


@st.composite
def mlp(draw: st.DrawFn) -> str:
    gated = draw(st.booleans())
    args = [f"hidden={draw(st.integers(1, 40))}", f"act={draw(st.sampled_from(ACTS))}"]
    flags = ["gated"] if gated else []
    flags += [f for f in ("nobias", "conv1d") if draw(st.booleans())]
    if not gated and draw(st.booleans()):
        args.append("dropout=0.1")
    return "mlp" + "".join(f"/{f}" for f in flags) + f"({', '.join(args)})"


@st.composite
def specs(draw: st.DrawFn) -> str:
    t, width = draw(st.integers(1, 9)), draw(st.sampled_from([4, 6, 8, 12, 16, 24]))
    lines = [f"input {t}", f"embedding(vocab={draw(st.integers(2, 30))}, dim={width})"]
    lines.append("x = " + draw(st.sampled_from(["identity", f"position-embedding(max={t + draw(st.integers(0, 3))})",
                                               "sinusoidal-positions", "token-type-embedding(types=2)",
                                               "class-token"])))
    rotary = draw(st.sampled_from([0, 2, 4]))
    if rotary:
        lines += [f"rope = rotary(dim={rotary})", "@x"]
    norm = draw(st.sampled_from(["layernorm", "rmsnorm", "layernorm/nobias", "layernorm(eps=1e-6)"]))
    for i in range(draw(st.integers(1, 3))):
        layer = draw(attention(width, rotary, f"h{i}"))
        lines += ["residual:", f"    h{i} = {norm}", f"    {layer}", "    dropout(0.1)",
                  "shortcut: identity", "residual:", f"    {norm}, {draw(mlp())}"]
        lines += ["    layer-scale"] if draw(st.booleans()) else []
        lines += ["    stochastic-depth(p=0.1)"] if draw(st.booleans()) else []
        lines.append("shortcut: identity")
    lines.append(draw(st.sampled_from(["fc-5", "token(0), fc-3/nobias", norm])))
    return "\n".join(lines) + "\n"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs())
def test_random_transformer_stacks_agree_with_torch(text: str) -> None:
    try:
        graph = load_text(text, "random.arch")
    except SpecError:
        assume(False)
        return
    report = verify(graph, "cpu", batch=2, runs=0)
    wrong = "\n".join(f"  node {c.node} {c.scope} '{c.text}': {c.what} archcalc {c.archcalc} "
                      f"!= torch {c.torch}" for c in report.failures)
    assert report.ok, f"archcalc and torch disagree on\n{text}{wrong}"
