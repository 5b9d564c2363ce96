"""When a hand calculation fails because of a default: `conv5-6` pads "same" (2 on each side)
while the textbook formula, and `archcalc calc`, assume no padding.

For a wrong shape claim, walk back along the chain of single-input layers that leads to it;
where convolutions there use their default padding, work the shapes out again through the
same chain with those convolutions at padding 0 (each layer type's own shape rule, as the
shapes pass would). If that gives the claimed shape, the default is the cause: say so and
show the `/p0` fix. This is a what-if for the message only; no figure of the analysis changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from archcalc.graph import LayerGraph, Node
from archcalc.layers.base import LayerArgError
from archcalc.records import record
from archcalc.tensor import Shape, channels_last

MAX_CHAIN = 64


@record
class DefaultPadding:
    """The layers whose default padding made the difference, and the shape with /p0 on each."""

    layers: tuple[Node, ...]
    shape: Shape  # channels first
    claimed: tuple[int, ...]  # the same shape in the order the claim wrote it

    def text(self) -> str:
        """'conv5-6 (line 2) pads 2 on each side by default (…): written conv5-6/p0 it gives 28×28×6, as claimed'."""
        who = " and ".join(f"{n.text} (line {n.loc.line})" if n.loc else n.text for n in self.layers)
        pads = sorted({_padding(n) for n in self.layers})
        verb, it = ("pads", "it gives") if len(self.layers) == 1 else ("pad", "they give")
        fix = " and ".join(f"{n.text}/p0" for n in self.layers)
        return (f"{who} {verb} {' or '.join(pads)} on each side by default ('same', as a spec's conv does); "
                f"the textbook formula, like archcalc calc, assumes no padding: written {fix} {it} "
                f"{'×'.join(map(str, self.claimed))}, as claimed")


def _padding(n: Node) -> str:
    g = n.layer.geometry(n.args, n.in_shapes)
    pads = getattr(g, "padding", None)
    if not pads:
        return "'same'"
    return "×".join(map(str, pads)) if len(set(pads)) > 1 else str(pads[0])


def default_padded(n: Node) -> bool:
    """A convolution whose padding the spec did not write (and that is not TensorFlow's /same)."""
    return "padding" in n.args and n.args["padding"] is None and not n.args.get("same", False) \
        and n.layer.kind == "conv"


def explain_shape(graph: LayerGraph, node_id: int, wanted: Sequence[int]) -> DefaultPadding | None:
    """Whether writing /p0 on the default-padded convs before `node_id` gives the claimed shape."""
    chain: list[Node] = []
    here = graph.node(node_id)
    while here.type != "input" and len(chain) < MAX_CHAIN:
        chain.append(here)
        if len(here.inputs) != 1:
            break
        here = graph.node(here.inputs[0])
    chain.reverse()
    padded = [n for n in chain if default_padded(n)]
    if not padded or len(chain[0].inputs) != 1:
        return None
    shape = graph.node(chain[0].inputs[0]).shape
    try:
        for n in chain:
            args = {**n.args, "padding": (0,)} if default_padded(n) else n.args
            shape = n.layer.shape(args, (shape,)).shape
    except LayerArgError:
        return None
    want = tuple(wanted)
    if want not in (shape, channels_last(shape)):
        return None
    return DefaultPadding(tuple(padded), shape, want)
