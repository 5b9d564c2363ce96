"""What transformers add to token vectors, and take from them: learned absolute positions (with
parameters), sinusoidal positions (none), the rotary table (none: buffers only), token types
(BERT's segments), a class token, and one token taken out of a sequence.

Each reads a sequence T×F (time steps, then features) and keeps its layout. None multiplies two
tensors (FlopCounterMode counts 0 for them): their adds and the sines they evaluate are other ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import Arg, Args, Counts, Formula, LayerArgError, LayerType, OtherOps, Saved, Shaped, register
from archcalc.layers.imported import Emit, OnnxCall, TorchCall
from archcalc.tensor import Shape, format_shape, prod


def _sequence(shape: Shape, layer: str) -> tuple[int, int]:
    """(T, F) of a T×F sequence, or the error that says it is not one."""
    if len(shape) != 2:
        raise LayerArgError(f"'{layer}' reads a sequence T×F (time steps × features), got {format_shape(shape)}")
    return shape[0], shape[1]


class _Added(LayerType):
    """A table added to a sequence, position by position."""

    kind = "embedding"
    layout = "sequence"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """The add keeps nothing; a table looked up row by row (F.embedding) keeps the T row indices
        (int64, one set for the whole batch) where it is trained; one added whole keeps nothing (measured)."""
        if not weight_grad or a.get("whole") or not self.counts(a, inputs, out).params:
            return ()
        return (Saved("own", elements=inputs[0][0], dtype="int64", per_sample=False),)


@register
class PositionEmbedding(_Added):
    name = "position-embedding"
    aliases = ("pos-embedding", "learned-positions")
    flags = {"whole": ("whole", True), "ids": ("ids", True), "frozen": ("frozen", True)}
    args = (
        Arg("max", "int", required=True, aliases=("positions", "max_positions", "n_positions"), minimum=1),
        Arg("whole", "bool", False),
        Arg("ids", "bool", False, aliases=("position_ids",)),
        Arg("frozen", "bool", False),
    )
    summary = ("learned absolute positions: x + rows 0..T−1 of a max×F table (GPT-2's wpe, BERT's "
               "position_embeddings; T at most max); /whole: a 1×max×F parameter added whole, T = max "
               "(torchvision's ViT); /ids: the max position ids kept as a buffer (BERT's)")
    example = "position-embedding(max=1024), position-embedding/whole(max=197), position-embedding/ids(max=512)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, _ = _sequence(inputs[0], self.name)
        if a["whole"] and t != a["max"]:
            raise LayerArgError(f"the whole position table ({a['max']} positions) is added to a sequence of {t} "
                                f"tokens: they must be as many, as torchvision's ViT needs", arg="max")
        if t > a["max"]:
            raise LayerArgError(f"a sequence of {t:,} tokens is longer than the position table ({a['max']:,} "
                                f"positions): the model cannot take it", arg="max",
                                hint=f"a longer table needs max={t} or more (where a spec parameter sets max, "
                                     f"--set it too)")
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=a["max"] * inputs[0][1], buffers=a["max"] if a["ids"] else 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        f = inputs[0][1]
        return {"pos_embedding": (1, a["max"], f)} if a["whole"] else {"weight": (a["max"], f)}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """max·F learned elements (all of them are parameters, whatever T)."""
        f = inputs[0][1]
        formulas = [Formula("weights", f"{a['max']}·{f}", a["max"] * f, "the whole table, whatever T")]
        if a["ids"]:
            formulas.append(Formula("buffers", str(a["max"]), a["max"], "position ids 0..max−1"))
        return formulas

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import PositionEmbedding as TorchPositions

        return TorchPositions(a["max"], inputs[0][1], whole=a["whole"], ids=a["ids"])


@register
class SinusoidalPositions(_Added):
    name = "sinusoidal-positions"
    aliases = ("sinusoidal", "sinusoidal-pe")
    args = (Arg("max", "int", None, aliases=("positions",), minimum=1), Arg("base", "float", 10000.0))
    summary = ("x + the sinusoidal table of Vaswani et al. 2017 (sin on even features, cos on odd ones): no "
               "parameters, no buffers; max (optional) bounds T")
    example = "sinusoidal-positions, sinusoidal-positions(max=512)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, _ = _sequence(inputs[0], self.name)
        if a["max"] is not None and t > a["max"]:
            raise LayerArgError(f"a sequence of {t:,} tokens is longer than the {a['max']:,} positions given")
        return Shaped(inputs[0])

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """Per element: the add, one sine or cosine (exponentials) and the t·rate multiply."""
        n = prod(out)
        return OtherOps(adds=n, multiplies=n, exponentials=n)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import Sinusoidal

        return Sinusoidal(a["base"])


@register
class TokenTypeEmbedding(_Added):
    name = "token-type-embedding"
    aliases = ("token-types", "segment-embedding")
    args = (Arg("types", "int", 2, aliases=("type_vocab_size", "vocab"), minimum=1),
            Arg("max", "int", None, aliases=("positions",), minimum=1))
    summary = ("BERT's token type (segment) embedding: x + the row of type 0 (the default ids), types×F "
               "parameters; max: the max default ids kept as a buffer, as Hugging Face's BertEmbeddings does")
    example = "token-type-embedding(types=2), token-type-embedding(types=2, max=512)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, _ = _sequence(inputs[0], self.name)
        if a["max"] is not None and t > a["max"]:
            raise LayerArgError(f"a sequence of {t:,} tokens is longer than the {a['max']:,} default token type ids")
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=a["types"] * inputs[0][1], buffers=a["max"] or 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {"weight": (a["types"], inputs[0][1])}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """types·F learned elements."""
        f = inputs[0][1]
        return [Formula("weights", f"{a['types']}·{f}", a["types"] * f)]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import TokenTypeEmbedding as TorchTokenTypes

        return TorchTokenTypes(a["types"], inputs[0][1], a["max"])


@register
class Rotary(LayerType):
    name = "rotary"
    aliases = ("rotary-embedding",)
    flags = {"nocopy": ("copy", False)}
    args = (Arg("dim", "int", required=True, aliases=("head_dim", "d"), minimum=2),
            Arg("base", "float", 10000.0, aliases=("theta", "rope_theta")),
            Arg("copy", "bool", True, aliases=("original",)))
    kind = "embedding"
    layout = "sequence"
    shape_only = True  # the angles t·inv_freq: positions only, no gradient
    summary = ("the rotary table of RoFormer/LLaMA, computed once for every layer: T×F → the angles T×dim that "
               "attention(…, rotary=true) turns queries and keys by; no parameters; buffers inv_freq (dim/2) and "
               "its copy original_inv_freq (Hugging Face's; /nocopy: inv_freq only)")
    example = "rope = rotary(dim=128), rotary(dim=64, base=500000)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, _ = _sequence(inputs[0], self.name)
        if a["dim"] % 2:
            raise LayerArgError(f"rotary dims come in pairs: dim={a['dim']} is odd", arg="dim")
        return Shaped((t, a["dim"]))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        half = a["dim"] // 2
        return Counts(buffers=2 * half if a["copy"] else half)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """t·inv_freq for T·dim/2 angles, and a cosine and a sine of each of T·dim (exponentials)."""
        t = inputs[0][0]
        return OtherOps(multiplies=t * a["dim"] // 2, exponentials=2 * t * a["dim"])

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only sizes (measured)."""
        return ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        half = a["dim"] // 2
        if a["copy"]:
            return [Formula("buffers", f"2·{half}", 2 * half, "inv_freq and original_inv_freq")]
        return [Formula("buffers", str(half), half, "inv_freq")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import Rotary as TorchRotary

        return TorchRotary(a["dim"], a["base"], a["copy"])


@register
class ClassToken(LayerType):
    name = "class-token"
    aliases = ("cls-token",)
    kind = "embedding"
    layout = "sequence"
    summary = "a learned token put in front of the sequence: T×F → (T+1)×F, F parameters (ViT's class_token)"
    example = "class-token"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, f = _sequence(inputs[0], self.name)
        return Shaped((t + 1, f))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=inputs[0][1])

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {"class_token": (1, 1, inputs[0][1])}

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only sizes (measured)."""
        return ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        return [Formula("weights", str(inputs[0][1]), inputs[0][1], "one token of F features")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import ClassToken as TorchClassToken

        return TorchClassToken(inputs[0][1])


@register
class Token(LayerType):
    name = "token"
    aliases = ("select-token", "take-token")
    args = (Arg("index", "int", 0),)
    layout = "channels"
    view = "strided"  # x[:, index] is a view of the sequence's storage: a layer saving it keeps all T×F
    summary = "one position of a sequence, x[:, index]: T×F → F (ViT's class token for its head, BERT's pooler)"
    example = "token(0), token(-1)"
    torch_functions = ("operator.getitem",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """`x[:, i]` (or `x[:, i, :]`) of a batch of T×F sequences, i a number."""
        index = call.args[1] if len(call.args) > 1 else None
        if not isinstance(index, tuple) or len(index) < 2 or len(call.inputs[0]) != 2 or not call.batched[0]:
            return None
        if index[0] != slice(None) or type(index[1]) is not int:
            return None
        if not all(i == slice(None) or i is Ellipsis for i in index[2:]):
            return None
        return Emit(f"token({index[1]})")

    onnx_ops = ("Gather",)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """`x[:, i]` exported: a Gather on axis 1 (the one after the batch) of a T×F sequence by one scalar
        index (a 1-element list keeps the axis: not this)."""
        index = call.constants.get(1)
        if call.attrs.get("axis", 0) != 1 or len(call.inputs) != 1 or len(call.inputs[0]) != 2 or \
                type(index) is not int:
            return None
        return Emit(f"token({index})")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        t, f = _sequence(inputs[0], self.name)
        if not -t <= a["index"] < t:
            raise LayerArgError(f"token {a['index']} is not one of the {t} positions")
        return Shaped((f,))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only sizes (measured)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import TakeToken

        return TakeToken(a["index"])
