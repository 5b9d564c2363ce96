"""The registry of layer types: one class per type holds everything about it.

A layer type states, together, its arguments, the paper tokens that name it
(`conv3-64`, `maxpool3/s2`), its output shape, parameter counts, MACs, the
other (non-MAC) operations, its receptive-field geometry, its torch module and
the module that stands in for it when the receptive field is probed by gradients.
`@register` fills the registry; a duplicate name or alias raises at import.
Every method is a small pure function of the arguments and input shapes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from archcalc.records import record
from archcalc.tensor import Shape, prod

if TYPE_CHECKING:  # torch is imported only by builders, never by the static path
    from torch import nn

    from archcalc.layers.imported import Emit, OnnxCall, TorchCall
    from archcalc.layers.window import Window

Args = Mapping[str, Any]


class LayerArgError(ValueError):
    """An argument value is wrong; expansion or the shapes pass attaches the spec location."""

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.arg = arg  # the argument whose value is wrong, where one alone is


@record(slots=True)
class Counts:
    """Parameter elements (weights, biases), the frozen share of them, and buffers of one layer.

    `frozen` parameters are parameters still (`sum(p.numel())` counts them) that PyTorch would
    hold with `requires_grad=False`: no gradient, no optimizer state.
    """

    weights: int = 0
    biases: int = 0
    buffers: int = 0
    frozen: int = 0

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def trainable(self) -> int:
        return self.params - self.frozen

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.weights + other.weights,
            self.biases + other.biases,
            self.buffers + other.buffers,
            self.frozen + other.frozen,
        )


@record(slots=True)
class OtherOps:
    """Operations that are not multiply-accumulates, per element as Netscope counts them."""

    adds: int = 0
    multiplies: int = 0
    divisions: int = 0
    comparisons: int = 0
    exponentials: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: OtherOps) -> OtherOps:
        return OtherOps(self.adds + other.adds, self.multiplies + other.multiplies, self.divisions + other.divisions,
                        self.comparisons + other.comparisons, self.exponentials + other.exponentials)


@record
class Gradients:
    """MACs of one layer's backward pass, from its own rule, in FlopCounterMode's convention
    (products only: a bias gradient is a sum and counts 0).

    `input`: the gradients with respect to the inputs that need one (and to the layer's internal
    state: an RNN's hidden state through time); `weight`: the gradient of its weights, when they
    are trained. `flop_counter` is what FlopCounterMode counts for the same backward where that
    differs (its `convolution_backward` counts a grouped convolution's weight gradient `groups`
    times), with `why`.
    """

    input: int = 0
    weight: int = 0
    flop_counter: int | None = None
    why: str = ""

    @property
    def total(self) -> int:
        return self.input + self.weight

    @property
    def counted(self) -> int:
        """What FlopCounterMode counts: `flop_counter` where it differs, else the same."""
        return self.total if self.flop_counter is None else self.flop_counter


@record
class Saved:
    """One activation tensor a layer's backward keeps between the forward and the backward pass
    (what `torch.autograd.graph.saved_tensors_hooks` sees packed), parameters aside.

    `tensor` is "input" (the layer's input number `index`), "output" (its own output) or "own" (a
    tensor only this layer holds: BatchNorm's batch mean and inverse std, max-pool indices, a
    dropout mask, a padded copy), of `elements` per sample (own tensors only; an input's or
    output's size is the graph's). `dtype` is "activation" (the training dtype), "mask" (the
    dropout mask: activation dtype on CPU, 1 byte on CUDA), "float32" or "int64";
    `per_sample` is False for a tensor whose size does not grow with the batch.
    """

    tensor: str
    index: int = 0
    elements: int = 0
    dtype: str = "activation"
    per_sample: bool = True


def saved_input(index: int = 0) -> Saved:
    return Saved("input", index)


SAVED_OUTPUT = Saved("output")


@record
class Arg:
    """One argument of a layer type: its name, how to read it, its default."""

    name: str
    kind: str  # "int", "size" (int or AxB tuple), "ints" (whole numbers, negative too), "float", "bool", "str"
    default: Any = None
    required: bool = False
    aliases: tuple[str, ...] = ()
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    variadic: bool = False  # takes every remaining positional value: reshape(12, 64, -1)


# `/functional` on an activation or a pool: the PyTorch code calls the function (`F.relu(x)`,
# `F.adaptive_avg_pool2d(x, 1)`) instead of a module. The figures are the same; the counting tools
# that hook modules (ptflops, thop) count the two differently (passes/conventions.py).
FUNCTIONAL = Arg("functional", "bool", False)
FUNCTIONAL_FLAG = {"functional": ("functional", True)}


@record
class Formula:
    """One worked figure: what it is, the formula with the numbers put in, and its value.

    `what` names the figure the value must equal: "weights", "biases", "params",
    "buffers", "MACs", or "output H, W" (the listed spatial axes of the output shape).
    `expression` is arithmetic up to its first ' = ' (tests evaluate it); `note` is words.
    """

    what: str
    expression: str
    value: int
    note: str = ""

    def line(self) -> str:
        """`⌊(227 − 11 + 2·0)/4⌋ + 1 = 55`, with the note after the value."""
        note = f"  ({self.note})" if self.note else ""
        return f"{self.expression} = {self.value:,}{note}"


@record(slots=True)
class Implied:
    """A layer the shapes pass puts in on a layer type's behalf (a flatten before an FC on a
    feature map, an auto shortcut's 1×1 projection): its type, typed arguments and label."""

    type: str
    args: Mapping[str, Any]
    text: str


@record(slots=True)
class Part:
    """A module PyTorch's layout of a layer calls inside it (an attention's q, k and v
    projections, an MLP's first linear layer): its name and its output shape (no batch)."""

    name: str
    shape: Shape


@record(slots=True)
class Shaped:
    """What a shape rule returns: the output shape and any warnings about it."""

    shape: Shape
    warnings: tuple[str, ...] = field(default=())


class LayerType:
    """Base of every layer type. Subclasses override what differs from 'no-op'."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    patterns: ClassVar[tuple[str, ...]] = ()  # regexes for paper tokens; groups are args
    options: ClassVar[Mapping[str, str]] = {}  # "/s2": short option letter -> argument
    flags: ClassVar[Mapping[str, tuple[str, Any]]] = {}  # "/nobias" -> ("bias", False)
    args: ClassVar[tuple[Arg, ...]] = ()
    kind: ClassVar[str] = "other"  # conv, fc, norm, activation, pool, merge, other
    # The output's axis order: "channels" (C×…, what conv and pooling make), "sequence"
    # (T×F, features last: embeddings and RNNs), "plain" (axes with no meaning: a reshape's),
    # "same" (position-wise: the input's), "swap" (a transpose) or "given" (the input header's).
    # The shapes pass reads it: an FC on a sequence acts per time step.
    layout: ClassVar[str] = "same"
    needs_layout: ClassVar[str | None] = None  # the layout its input must have, if any
    weighted: ClassVar[bool] = False  # conv and FC: what hidden-activation follows
    path_depth: ClassVar[int | None] = None  # weighted layers in a row inside it (attention: 2); None: weighted
    internal: ClassVar[bool] = False  # made by expansion only, never named in a spec
    splits: ClassVar[bool] = False  # makes several tensors: `q, k, v = chunk(3, dim=-1)`
    free_inputs: ClassVar[bool] = False  # may read free parameters (no batch axis) alone
    batched_source: ClassVar[bool] = True  # a layer without inputs: whether its output has a batch axis
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    shape_inputs: ClassVar[tuple[int, ...]] = ()  # inputs read for their size only (a crop's reference): no field
    index_input: ClassVar[int | None] = None  # the input whose max-pool indices it reads (max unpooling)
    index_source: ClassVar[bool] = False  # a max pool: its module can return the indices of its maxima too
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    # What this type reads in someone else's model (archcalc/importers/): PyTorch module classes
    # ("torch.nn.Conv2d"), functions ("torch.cat", "torch.nn.functional.relu", "operator.add"),
    # tensor methods ("Tensor.view"), and ONNX op types ("Conv"). `from_torch` / `from_onnx`
    # write such a call as a spec item (layers/imported.py has the records).
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_functions: ClassVar[tuple[str, ...]] = ()
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    # how the output's storage relates to the input's (the saved-tensor pass reads it): None, a
    # new tensor; "view", the input's storage, laid out as it was; "strided", the input's storage,
    # no longer contiguous (a transpose, a slice); "reshape", a view of a contiguous input and a
    # copy of a strided one (torch.reshape, flatten)
    view: ClassVar[str | None] = None
    # its output depends on its inputs' shapes only, never their values (the rotary angle table): it
    # passes no gradient back, and its output needs none (the training pass reads it)
    shape_only: ClassVar[bool] = False

    # -- the rules ---------------------------------------------------------------
    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts()

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        return 0

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps()

    def quadratic_macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """The part of `macs` that grows with the square of the sequence (attention's Q·Kᵀ and
        A·V); 0 for every layer whose work grows linearly with the positions."""
        return 0

    def causal_macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """`macs` without what a causal mask hides (the upper triangle of Q·Kᵀ and A·V): a
        figure of its own, never what FlopCounterMode reports; `macs` for every unmasked layer."""
        return self.macs(a, inputs, out)

    def kv_cache(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Elements per sample a decoder keeps for this layer between generation steps (its
        keys and values); 0 for every layer that keeps nothing."""
        return 0

    def parts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> tuple[Part, ...]:
        """The modules PyTorch's layout of this layer calls inside it, in call order, with their
        output shapes (an attention's projections, an MLP's linear layers and activation);
        () where the layer is one module that calls no other."""
        return ()

    def connections(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Connections as LeCun et al. 1998 count them: each output unit's inputs, plus 1 for its bias.

        The default is MACs + one bias add per output unit when the layer has biases.
        """
        with_bias = self.counts(a, inputs, out).biases > 0
        return self.macs(a, inputs, out) + (prod(out) if with_bias else 0)

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients | None:
        """MACs of this layer's backward pass when the inputs marked in `input_grad` need a gradient
        and its weights are trained (`weight_grad`). The default: nothing for a layer without MACs
        (its backward is element-wise), None (unknown, and named as such) for one with MACs."""
        return Gradients() if self.macs(a, inputs, out) == 0 else None

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...] | None:
        """The activation tensors this layer's backward keeps (see `Saved`), when its inputs and
        weights need gradients as marked; None where the layer type has no rule (named as such)."""
        return None

    def implicit_before(self, a: Args, inputs: Sequence[Shape], layouts: Sequence[str]) -> tuple[Implied, ...]:
        """Layers to put in front of this one for the input it gets (an FC on C×H×W: a flatten)."""
        return ()

    def resolve(self, a: Args, inputs: Sequence[Shape]) -> tuple[Implied, ...] | None:
        """What a shape-dependent placeholder becomes once its inputs' shapes are known: the
        layers that replace it, applied to its first input (none: an identity). None for every
        real layer type, which stays as it is."""
        return None

    def dense_equivalent(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int | None:
        """For a layer that shares its weights across positions (a convolution): the parameters
        of the fully connected layer that maps the same input to the same output
        (`dense_params`). None for every other layer."""
        return None

    def for_layout(self, a: Args, layout: str) -> Args:
        """The arguments adjusted to the input's layout (softmax: channels or features)."""
        return a

    def layout_for(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """The output's layout where the shapes decide it (a transpose of more than two axes is
        plain); None: the class's `layout` rule."""
        return None

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        """The arguments adjusted to what the inputs are: their layouts, and which have a batch
        axis (a free `parameter(…)` has none). By default only the first input's layout counts."""
        return self.for_layout(a, layouts[0]) if layouts else a

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        """The shape of each parameter tensor, as PyTorch's module names them ('weight', 'bias').

        Shared and tied weights are checked against these. The default describes them by their
        sizes only; layer types whose weights are tied or shared give the real shapes."""
        c = self.counts(a, inputs, out)
        shapes = {"weight": (c.weights,), "bias": (c.biases,)}
        return {k: v for k, v in shapes.items() if v[0]}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """The formulas behind shape, counts and MACs with the numbers substituted."""
        return []

    def for_indices(self, a: Args, source: LayerType, source_args: Args, source_inputs: Sequence[Shape]) -> Args:
        """For a layer reading pooling indices (`index_input`): its arguments completed from the
        layer that makes them (its window, its input's size); LayerArgError where that layer
        makes none."""
        return a

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Window | str | None:
        """None: position-preserving (activations, norms); GLOBAL: sees everything; else the
        `Window` that says which input positions each output position reads (a `Geometry` for
        convolution and pooling)."""
        return None

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> nn.Module:
        from archcalc.errors import BuildError

        raise BuildError(f"layer type '{self.name}' has no torch equivalent")

    def indices_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> nn.Module:
        """For an `index_source`: the module returning (output, indices), for a layer that reads them."""
        from archcalc.errors import BuildError

        raise BuildError(f"layer type '{self.name}' gives no indices")

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> nn.Module | None:
        """The module that stands in for this layer in the gradient receptive-field probe
        (`archcalc.pytorch.rf_probe`): same geometry, positive gradients everywhere.

        The default is the layer's own torch module (the probe sets its weights to 1/fan-in
        and its biases to 0). None where no module can stand in; the probe is then skipped.
        """
        return self.torch_module(a, inputs, out)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """The spec item for one traced PyTorch call this type declares (`torch_modules`,
        `torch_functions`); None where the call is not one it writes; `Unsupported` where it is,
        in a form archcalc cannot count exactly."""
        return None

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """The spec item for one ONNX node whose op type this type declares (`onnx_ops`)."""
        return None

    # -- argument handling ---------------------------------------------------------
    def normalize(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Typed arguments, with defaults, from raw values (strings or numbers) under their
        canonical names (binding has resolved every alias)."""
        by_name = {arg.name: arg for arg in self.args}
        out = {key: convert(by_name[key], value, self.name) for key, value in raw.items()}
        for arg in self.args:
            if arg.name not in out:
                if arg.required:
                    raise LayerArgError(f"'{self.name}' needs the argument '{arg.name}'")
                out[arg.name] = arg.default
        return out

    def match_token(self, head: str) -> dict[str, str] | None:
        """The arguments a paper token spells, or None when it is not this type's."""
        low = head.lower()
        if low in (self.name, *self.aliases):
            return {}
        for pattern in self.patterns:
            m = re.fullmatch(pattern, low)
            if m:
                return {k: v for k, v in m.groupdict().items() if v is not None}
        return None


def dense_params(input_shape: Shape, out: Shape) -> int:
    """in_elements·out_elements + out_elements: an FC from a whole input to a whole output."""
    return prod(input_shape) * prod(out) + prod(out)


def convert(arg: Arg, value: Any, layer: str) -> Any:
    """One raw value to the argument's type, with a message that names both."""
    text = str(value)
    try:
        if arg.kind == "int":
            result: Any = int(text)
            _check_min(arg, (result,), layer)
        elif arg.kind == "size":
            result = value if isinstance(value, tuple) else parse_size(text)
            _check_min(arg, result, layer)
        elif arg.kind == "ints":
            parts = value if isinstance(value, (tuple, list)) else (value,)
            result = tuple(n for part in parts for n in (part if isinstance(part, tuple) else parse_size(str(part))))
            _check_min(arg, result, layer)
        elif arg.kind == "float":
            result = float(text)
            if result != result or result in (float("inf"), float("-inf")):  # nan, inf: no layer takes them
                raise LayerArgError("a finite number")
        elif arg.kind == "bool":
            result = _parse_bool(value)
        else:
            result = text
            if arg.choices and result not in arg.choices:
                raise LayerArgError(f"one of {', '.join(arg.choices)}")
    except (ValueError, TypeError) as e:
        detail = f" ({e})" if isinstance(e, LayerArgError) else ""
        raise LayerArgError(
            f"argument '{arg.name}' of '{layer}' must be {_kind_words(arg)}, not '{text}'{detail}", arg=arg.name
        ) from None
    return result


def _check_min(arg: Arg, values: tuple[int, ...], layer: str) -> None:
    if arg.minimum is not None and any(v < arg.minimum for v in values):
        raise LayerArgError(f"at least {arg.minimum}")


def _kind_words(arg: Arg) -> str:
    return {
        "int": "a whole number",
        "size": "a whole number or sizes like 3x3",
        "ints": "whole numbers, as in 12, 64, -1",
        "float": "a number",
        "bool": "true or false",
    }.get(arg.kind, "a word")


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(text)


def parse_size(text: str) -> tuple[int, ...]:
    """'3' -> (3,), '1x7' -> (1, 7), '(1, 7)' -> (1, 7)."""
    parts = re.split(r"[x×,]", text.strip().strip("()").replace(" ", ""))
    return tuple(int(p) for p in parts)


def per_axis(value: tuple[int, ...] | int, rank: int, what: str = "size") -> Shape:
    """Broadcast a one-number size to every spatial axis; check a full one's length."""
    values = (value,) if isinstance(value, int) else value
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise LayerArgError(f"{what} {'x'.join(map(str, values))} has {len(values)} axes, the input has {rank}")
    return tuple(values)


REGISTRY: dict[str, LayerType] = {}
_NAMES: dict[str, str] = {}


def register(cls: type[LayerType]) -> type[LayerType]:
    """Add a layer type to the registry; a name or alias used twice is a bug."""
    instance = cls()
    if cls.name in REGISTRY:
        raise RuntimeError(f"layer type '{cls.name}' registered twice")
    for key in () if cls.internal else (cls.name, *cls.aliases):
        if key in _NAMES:
            raise RuntimeError(f"layer name '{key}' registered twice ({_NAMES[key]}, {cls.name})")
        _NAMES[key] = cls.name
    REGISTRY[cls.name] = instance
    _find.cache_clear()
    return cls


def all_names() -> list[str]:
    """Every name and alias, for 'did you mean'."""
    return sorted(_NAMES)


def find(head: str) -> tuple[LayerType, dict[str, str]] | None:
    """The layer type a token head names, with the arguments it spells (a fresh dict each call)."""
    found = _find(head.lower())
    return None if found is None else (found[0], dict(found[1]))


@functools.lru_cache(maxsize=4096)
def _find(low: str) -> tuple[LayerType, tuple[tuple[str, str], ...]] | None:
    """Memoised per distinct token: a generated 100,000-layer spec has a handful of them, and
    matching one tries every layer type's patterns."""
    if low in _NAMES:
        return REGISTRY[_NAMES[low]], ()
    for layer in REGISTRY.values():
        spelled = None if layer.internal else layer.match_token(low)
        if spelled is not None:
            return layer, tuple(spelled.items())
    return None


