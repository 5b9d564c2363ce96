"""What an importer hands the spec writer: the model's operations in the order they ran.

Torch-free records. A PyTorch trace (`torch_trace`) or an ONNX graph (`onnx_graph`) becomes
a `ModelIR`: every operation with the spec item its layer type wrote for it (`Emit`), the
module call it ran in (for blocks and comments), its measured output shape, the parameters
and buffers it owns (each tensor counted once, at the first operation that holds it), the
FLOPs PyTorch counted for it, and whether it applies another's weights again (a module
called twice) or holds another's weight (a tied parameter). The writer (`writer`) only
reads these; the self-check (`check`) compares the spec's analysis with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archcalc.layers.imported import Emit
from archcalc.records import record
from archcalc.tensor import Shape


@record
class Ref:
    """An operation's output: `part` of a split (0 for everything else)."""

    op: int
    part: int = 0


@record
class Frame:
    """One module call an operation ran inside: `key` tells two calls of one module apart."""

    key: str
    path: str  # the module's dotted path in the model ('layer1.0')
    cls: str  # its class, qualified ('torchvision.models.resnet.Bottleneck')


@dataclass
class Op:
    """One operation of the model, as the spec will hold it."""

    id: int
    type: str  # the layer type's name; 'input' for an input
    emit: Emit
    inputs: tuple[Ref, ...] = ()
    shapes: tuple[Shape, ...] = ()  # per part (one for everything but a split), no batch axis
    batched: bool = True
    scope: tuple[Frame, ...] = ()  # the module calls around it, outermost first (the root left out)
    path: str = ""  # the module it calls ('layer1.0.conv1'); '' for a function
    source: str = ""  # what it was in the model: 'torch.nn.Conv2d', 'torch.cat', 'Tensor.view'
    where: str = ""  # 'model.py:23', where the forward called it, when known
    params: int = 0  # parameter elements it owns (unique: a tied or shared tensor counted once)
    buffers: int = 0
    flops: int = 0  # what FlopCounterMode counted for it, per sample
    shares: int | None = None  # the op whose module this call applies again
    tie: int | None = None  # the op whose weight this op's weight is
    tie_transposed: bool = False
    name: str = ""  # for an input: its name (the forward's argument)
    unknown: bool = False  # kept as an opaque node (--allow-unknown)
    elements: int | None = None  # ONNX: the initializer elements it reads (parameters and statistics alike)

    @property
    def shape(self) -> Shape:
        return self.shapes[0] if self.shapes else ()


@dataclass
class ModelIR:
    """A whole model: its operations in the order they ran, inputs first."""

    name: str  # the spec's `name`
    origin: str  # where it came from, for the header comment: 'torchvision.models:resnet50'
    ops: list[Op]
    outputs: tuple[Ref, ...]  # the main output first
    layouts: dict[int, str] = field(default_factory=dict)  # input op id → 'sequence' / 'plain' where not channels
    params: int = 0  # sum(p.numel()) of the whole model (unique)
    buffers: int = 0
    flops: int = 0  # FlopCounterMode's total, per sample
    notes: list[str] = field(default_factory=list)  # what the import left out or assumed, said in the header
    framework: str = "torch"  # 'torch' or 'onnx'
    versions: str = ""  # 'torch 2.13.0'

    def op(self, ref: Ref | int) -> Op:
        return self.ops[ref if isinstance(ref, int) else ref.op]
