"""Recurrent layers: `rnn`, `lstm`, `gru`, stacked and bidirectional, as PyTorch lays them out.

A recurrent layer reads a sequence T×F and returns T×H (T×2H when bidirectional). Per
layer l and direction PyTorch holds `weight_ih` (G·H × F_l), `weight_hh` (G·H × H),
`bias_ih` and `bias_hh` (G·H each), with G gate blocks: 1 (RNN), 3 (GRU), 4 (LSTM) and
F_l = F for the first layer, H·directions above it. So

    weights = Σ_l directions·G·H·(F_l + H)      biases = layers·directions·2·G·H

and every weight is used once per time step: MACs = T·weights, what FlopCounterMode
counts as addmm/mm when PyTorch's unfused kernel runs (the fused mkldnn and cuDNN
kernels do the same products out of its sight; the torch module runs the unfused one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    Gradients,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, TorchCall, Unsupported, frozen_state, number_text
from archcalc.layers.window import GLOBAL
from archcalc.tensor import Shape

RECURRENT_ARGS = (
    Arg("hidden", "int", required=True, aliases=("hidden_size", "h", "units", "c"), minimum=1),
    Arg("layers", "int", 1, aliases=("num_layers", "l"), minimum=1),
    Arg("bidirectional", "bool", False, aliases=("bi",)),
    Arg("dropout", "float", 0.0),
    Arg("frozen", "bool", False),
)

# PyTorch's cells, per time step, layer and direction, on G·H gate pre-activations:
# both biases and the ih + hh sum are adds; sigmoid and tanh as archcalc's activations count them
_SIGMOID = OtherOps(exponentials=1, adds=1, divisions=1)
_TANH = OtherOps(exponentials=1, adds=2, divisions=1)


def _times(ops: OtherOps, n: int) -> OtherOps:
    return OtherOps(ops.adds * n, ops.multiplies * n, ops.divisions * n, ops.comparisons * n, ops.exponentials * n)


class _Recurrent(LayerType):
    options = {"l": "layers"}
    flags = {"bi": ("bidirectional", True), "bidirectional": ("bidirectional", True), "frozen": ("frozen", True)}
    args: ClassVar[tuple[Arg, ...]] = RECURRENT_ARGS
    kind = "recurrent"
    layout = "sequence"
    gates: ClassVar[int] = 1
    torch_name: ClassVar[str] = ""

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 2:
            raise LayerArgError(
                f"'{self.name}' reads a sequence T×F (time steps × features), got {'×'.join(map(str, inputs[0]))}"
            )
        if not 0 <= a["dropout"] < 1:
            raise LayerArgError(f"dropout={a['dropout']:g} between layers must be at least 0 and below 1")
        warnings: tuple[str, ...] = ()
        if a["dropout"] and a["layers"] == 1:  # PyTorch warns the same
            warnings = ("dropout between stacked layers does nothing with one layer",)
        return Shaped((inputs[0][0], a["hidden"] * self._directions(a)), warnings)

    def _directions(self, a: Args) -> int:
        return 2 if a["bidirectional"] else 1

    def _layer_inputs(self, a: Args, features: int) -> list[int]:
        """F_l: the sequence's features for the first layer, H·directions for the ones above."""
        return [features] + [a["hidden"] * self._directions(a)] * (a["layers"] - 1)

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        g, h, d = self.gates, a["hidden"], self._directions(a)
        weights = sum(d * g * h * (f + h) for f in self._layer_inputs(a, inputs[0][1]))
        return Counts(weights=weights, biases=a["layers"] * d * 2 * g * h)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """T·Σ_l directions·G·H·(F_l + H): each gate weight once per time step (bias adds are not MACs)."""
        return inputs[0][0] * self.counts(a, inputs, out).weights

    # activation vectors of H a cell step keeps for the backward pass, per layer and direction, as
    # PyTorch's native cell does (measured: tests/reference/saved_tensors_reference.json), and the
    # ones kept once per layer and direction
    kept_per_step: ClassVar[int] = 7
    kept_per_layer: ClassVar[int] = 0

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """Per layer l and direction, with F_l its input's features, G·H gate units and T steps:
        the weight gradient T·G·H·(F_l + H) (every step's outer products, the first one's with
        h₀ = 0 included), the input gradient T·G·H·F_l (layer 0 only when its input needs one) and
        the hidden-state gradient (T − 1)·G·H·H (none into h₀), as FlopCounterMode counts the `mm`s
        of PyTorch's native cell."""
        t, g, h, d = inputs[0][0], self.gates, a["hidden"], self._directions(a)
        flows = weight_grad or input_grad[0]
        grad_in = grad_w = 0
        for layer, f in enumerate(self._layer_inputs(a, inputs[0][1])):
            if weight_grad:
                grad_w += d * t * g * h * (f + h)
            if input_grad[0] or (layer and flows):
                grad_in += d * t * g * h * f
            if flows:
                grad_in += d * (t - 1) * g * h * h
        return Gradients(grad_in, grad_w)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """PyTorch's native cell: its input; per layer and direction `kept_per_step`·H per step (the
        gates and cell states) and `kept_per_layer`·H; each upper layer's input (and its dropout
        mask). oneDNN's and cuDNN's fused kernels keep a workspace of their own instead."""
        t, h, d = inputs[0][0], a["hidden"], self._directions(a)
        per_direction = Saved("own", elements=self.kept_per_step * t * h + self.kept_per_layer * h)
        kept: list[Saved] = [saved_input(0)]
        for layer, f in enumerate(self._layer_inputs(a, inputs[0][1])):
            kept += [per_direction] * d
            if layer:
                kept.append(Saved("own", elements=t * f))
                if a["dropout"]:
                    kept.append(Saved("own", elements=t * f, dtype="mask"))
        return tuple(kept)

    def step_ops(self, a: Args) -> OtherOps:
        """Non-MAC operations of one cell step (one layer, one direction)."""
        raise NotImplementedError

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """Per step, layer and direction: bias and gate adds, products, sigmoids and tanhs."""
        return _times(self.step_ops(a), inputs[0][0] * a["layers"] * self._directions(a))

    def connections(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Each gate unit per step: F_l + H inputs and its two biases."""
        return self.macs(a, inputs, out) + inputs[0][0] * self.counts(a, inputs, out).biases

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """directions·G·H·(F_l + H) weights per layer; 2·G·H biases per layer and direction; T·weights MACs."""
        g, h, d = self.gates, a["hidden"], self._directions(a)
        lead = f"{d}·{g}·{h}" if d > 1 else f"{g}·{h}"
        weights = " + ".join(f"{lead}·({f} + {h})" for f in self._layer_inputs(a, inputs[0][1]))
        biases = f"{a['layers']}·{d}·2·{g}·{h}"
        counts = self.counts(a, inputs, out)
        t = inputs[0][0]
        return [
            Formula("weights", weights, counts.weights, "weight_ih and weight_hh of every layer and direction"),
            Formula("biases", biases, counts.biases, "bias_ih and bias_hh"),
            Formula("params", f"{counts.weights} + {counts.biases}", counts.params),
            Formula("MACs", f"{t}·{counts.weights}", self.macs(a, inputs, out), f"{t} time steps · weights"),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        # every output step depends on the steps before it (and after, bidirectional)
        return GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        import archcalc.pytorch.modules as tm

        cls = getattr(tm, self.torch_name)
        return cls(inputs[0][1], a["hidden"], a["layers"], dropout=a["dropout"], bidirectional=a["bidirectional"],
                   **self._extra(a))

    def _extra(self, a: Args) -> dict[str, Any]:
        return {}

    def from_torch(self, call: TorchCall) -> Emit | None:
        """nn.LSTM/GRU/RNN batch first, with biases and no initial state: its output sequence
        (element 0 of what it returns)."""
        m = call.module
        if not m.batch_first:
            raise Unsupported("batch_first=False: archcalc reads sequences batch first (N×T×F)")
        if not m.bias:
            raise Unsupported("bias=False: archcalc's recurrent layers hold both biases")
        if getattr(m, "proj_size", 0):
            raise Unsupported("proj_size: an LSTM with projections")
        if call.tensor_count() > 1:
            raise Unsupported("an initial state passed in")
        options = [f"hidden={m.hidden_size}"]
        if m.num_layers != 1:
            options.append(f"layers={m.num_layers}")
        if m.bidirectional:
            options.append("bidirectional=true")
        if m.dropout:
            options.append(f"dropout={number_text(m.dropout)}")
        options += self._torch_extra(m)
        return Emit(f"{self.name}({', '.join(options)})" + ("/frozen" if frozen_state(m) else ""), element=0)

    def _torch_extra(self, m: Any) -> list[str]:
        return []


@register
class RNN(_Recurrent):
    name = "rnn"
    aliases = ("elman",)
    patterns = (r"rnn-?(?P<hidden>\d+)",)
    flags = {**_Recurrent.flags, "relu": ("nonlinearity", "relu"), "tanh": ("nonlinearity", "tanh")}
    args = (*RECURRENT_ARGS, Arg("nonlinearity", "str", "tanh", aliases=("activation",), choices=("tanh", "relu")))
    gates = 1
    kept_per_step = 1
    kept_per_layer = 1
    torch_name = "SequenceRNN"
    torch_modules = ("torch.nn.RNN",)
    summary = "Elman RNN h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu); T×F → T×H"
    example = "rnn(hidden=64), rnn-64/relu, rnn(hidden=64, layers=2, bidirectional=true)"

    def step_ops(self, a: Args) -> OtherOps:
        # H: b_ih, b_hh and ih + hh adds, then the nonlinearity
        h = a["hidden"]
        act = OtherOps(comparisons=h) if a["nonlinearity"] == "relu" else _times(_TANH, h)
        return OtherOps(adds=3 * h) + act

    def _extra(self, a: Args) -> dict[str, Any]:
        return {"nonlinearity": a["nonlinearity"]}

    def _torch_extra(self, m: Any) -> list[str]:
        return [] if m.nonlinearity == "tanh" else [f"nonlinearity={m.nonlinearity}"]


@register
class LSTM(_Recurrent):
    name = "lstm"
    patterns = (r"lstm-?(?P<hidden>\d+)",)
    gates = 4
    torch_name = "SequenceLSTM"
    torch_modules = ("torch.nn.LSTM",)
    summary = "long short-term memory (PyTorch's layout: 4 gate blocks i, f, g, o); T×F → T×H"
    example = "lstm(hidden=128, layers=2), lstm-128/bi, lstm(h=650, layers=2, dropout=0.5)"

    def step_ops(self, a: Args) -> OtherOps:
        # 4H: b_ih, b_hh and ih + hh adds each; c' = f·c + i·g (2 multiplies, 1 add); h' = o·tanh(c')
        h = a["hidden"]
        return OtherOps(adds=13 * h, multiplies=3 * h) + _times(_SIGMOID, 3 * h) + _times(_TANH, 2 * h)


@register
class GRU(_Recurrent):
    name = "gru"
    patterns = (r"gru-?(?P<hidden>\d+)",)
    gates = 3
    torch_name = "SequenceGRU"
    torch_modules = ("torch.nn.GRU",)
    summary = "gated recurrent unit (PyTorch's layout: 3 gate blocks r, z, n); T×F → T×H"
    example = "gru(hidden=128), gru-128/bi"

    def step_ops(self, a: Args) -> OtherOps:
        # 3H: b_ih and b_hh adds; r and z: ih + hh (2H); n: ih + r·hh (H adds, H multiplies);
        # h' = (1 − z)·n + z·h (2H adds, 2H multiplies)
        h = a["hidden"]
        return OtherOps(adds=11 * h, multiplies=3 * h) + _times(_SIGMOID, 2 * h) + _times(_TANH, h)
