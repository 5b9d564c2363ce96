"""Small torch modules for graph merges that torch.nn lacks. Imported only by builders."""

from __future__ import annotations

import torch
from torch import nn


def own_parameters(container: nn.Module, owned: list[tuple[str, str]]) -> None:
    """Save and load each (child, name) in `owned` as the container's own Parameter `child`, listed first
    among the container's keys, as torchvision keeps a free tensor: ViT's `class_token` and its Encoder's
    `pos_embedding`, a CNBlock's `layer_scale` (docs/spec-language.md 5.1). The child keeps the
    Parameter (its figures and forward are unchanged); only the state_dict's key moves, both ways."""

    def save(module: nn.Module, state: dict, prefix: str, meta: object) -> None:
        moved = [(prefix + leaf, state.pop(prefix + f"{leaf}.{name}")) for leaf, name in owned
                 if prefix + f"{leaf}.{name}" in state]
        keys = list(state)
        start = next((i for i, k in enumerate(keys) if k.startswith(prefix)), len(keys))
        rest = [(k, state.pop(k)) for k in keys[start:]]
        state.update(moved)
        state.update(rest)

    def load(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
        for leaf, name in owned:
            if prefix + leaf in state:
                state[prefix + f"{leaf}.{name}"] = state.pop(prefix + leaf)

    container.register_state_dict_post_hook(save)
    container.register_load_state_dict_pre_hook(load)


class Add(nn.Module):
    """Element-wise sum of any number of inputs (a residual join)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """Concatenation along a dim (1, the channels, by default); a free tensor (no batch axis, size 1
    first) is expanded over the batch first, as a class token is."""

    def __init__(self, dim: int = 1, batched: tuple[bool, ...] = ()) -> None:
        super().__init__()
        self.dim, self.batched = dim, tuple(batched)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.batched and not all(self.batched):
            n = next(x for x, b in zip(xs, self.batched) if b).shape[0]
            xs = tuple(x if b else x.expand(n, *x.shape[1:]) for x, b in zip(xs, self.batched))
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}" + (f", batched={self.batched}" if self.batched else "")


class Mul(nn.Module):
    """Element-wise product; the gate broadcasts (squeeze-and-excitation)."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return x * gate


class Slice(nn.Module):
    """Channels [start, end) of the input; end None: to the last channel."""

    def __init__(self, start: int, end: int | None) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start : self.end]


# -- sequences (archcalc/layers/sequence.py, recurrent.py) ------------------------------------


class FrozenEmbedding(nn.Module):
    """An embedding table that is not trained (Kim 2014's static channel): a buffer, so
    `parameters()` holds only what is learned."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.register_buffer("weight", torch.randn(num_embeddings, embedding_dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(ids, self.weight)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LocalResponseNorm(nn.LocalResponseNorm):
    """nn.LocalResponseNorm on a contiguous input: torch's own `view`s a C×D×H×W map, which fails
    after a transpose; a contiguous input goes through untouched (the same tensor)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.LocalResponseNorm's name
        return super().forward(input.contiguous())


class Transpose(nn.Module):
    """x.transpose(dim0, dim1); by default the two axes after the batch: a sequence N×T×F to N×F×T
    (what nn.Conv1d reads), or back."""

    def __init__(self, dim0: int = 1, dim1: int = 2) -> None:
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)  # a view, as in PyTorch code: saved tensors share its storage

    def extra_repr(self) -> str:
        return f"dim0={self.dim0}, dim1={self.dim1}"


class LastStep(nn.Module):
    """The last time step of a batch-first sequence: N×T×H → N×H."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


class SequenceOutput(nn.Module):
    """A batch-first recurrent layer returning the output sequence only, so layers chain.

    It runs PyTorch's unfused kernel: the fused mkldnn/cuDNN ones do the same products out of
    FlopCounterMode's sight. Mixed in before nn.RNN / nn.LSTM / nn.GRU.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mkldnn = torch.backends.mkldnn  # allow_tf32 kept as it is: setting it warns on CPU builds
        with mkldnn.flags(enabled=False, allow_tf32=mkldnn.allow_tf32), torch.backends.cudnn.flags(enabled=False):
            return super().forward(x)[0]


class SequenceRNN(SequenceOutput, nn.RNN):  # type: ignore[misc]  # forward narrows the return
    """nn.RNN (tanh or relu), batch first, returning the output sequence only."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        nn.RNN.__init__(self, input_size, hidden_size, num_layers, nonlinearity=nonlinearity, batch_first=True,
                        dropout=dropout, bidirectional=bidirectional)


class SequenceLSTM(SequenceOutput, nn.LSTM):  # type: ignore[misc]
    """nn.LSTM, batch first, returning the output sequence only."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        nn.LSTM.__init__(self, input_size, hidden_size, num_layers, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)


class SequenceGRU(SequenceOutput, nn.GRU):  # type: ignore[misc]
    """nn.GRU, batch first, returning the output sequence only."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        nn.GRU.__init__(self, input_size, hidden_size, num_layers, batch_first=True, dropout=dropout,
                        bidirectional=bidirectional)


# -- classic papers (archcalc/layers/classic.py) -------------------------------------------------


class TableConv(nn.Module):
    """A convolution whose output map j reads only the input maps in table[j] (LeNet-5's C3).

    The weights of all maps sit in one flat `weight` (Σ|table_j|·∏K elements, the paper's count).
    Output maps reading the same number of input maps run as one grouped convolution on the
    gathered input maps, so FlopCounterMode counts exactly the products the table asks for.
    """

    def __init__(self, in_channels: int, table: tuple[tuple[int, ...], ...], kernel_size: tuple[int, ...],
                 stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                 bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.table = in_channels, tuple(tuple(entry) for entry in table)
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        taps = 1
        for k in self.kernel_size:
            taps *= k
        # output maps grouped by fan-in; weights stored group after group
        sizes = sorted({len(entry) for entry in self.table})
        self.groups = [(n, [j for j, entry in enumerate(self.table) if len(entry) == n]) for n in sizes]
        self.order = [j for _, maps in self.groups for j in maps]
        fan_in = sum(len(entry) for entry in self.table)
        bound = 1 / (fan_in * taps / len(self.table)) ** 0.5
        self.weight = nn.Parameter(torch.empty(fan_in * taps).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(len(self.table)).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)[x.dim() - 3]
        taps = self.weight.numel() // sum(len(entry) for entry in self.table)
        outs, offset = [], 0
        for n, maps in self.groups:
            count = len(maps) * n * taps
            weight = self.weight[offset : offset + count].view(len(maps), n, *self.kernel_size)
            offset += count
            inputs = x[:, [i for j in maps for i in self.table[j]]]
            bias = self.bias[maps] if self.bias is not None else None
            outs.append(conv(inputs, weight, bias, self.stride, self.padding, self.dilation, len(maps)))
        out = torch.cat(outs, 1)
        back = sorted(range(len(self.order)), key=lambda k: self.order[k])  # group order → table order
        return out[:, back]

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {len(self.table)}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}, "
                f"table={self.table}")


class Subsampling(nn.Module):
    """LeNet-5's S2/S4: each window summed, times a trainable coefficient per map, plus a trainable
    bias per map. Element-wise only, so FlopCounterMode counts no FLOPs."""

    def __init__(self, channels: int, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 bias: bool = True) -> None:
        super().__init__()
        self.channels, self.kernel_size, self.stride = channels, tuple(kernel_size), tuple(stride)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rank = x.dim() - 2
        f = torch.nn.functional
        pool = (f.avg_pool1d, f.avg_pool2d, f.avg_pool3d)[rank - 1]
        window = 1
        for k in self.kernel_size:
            window *= k
        axes = (-1,) + (1,) * rank
        out = pool(x, self.kernel_size, self.stride) * (self.weight * window).view(axes)  # the window's sum
        return out + self.bias.view(axes) if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, bias={self.bias is not None}"


class RBF(nn.Module):
    """Euclidean radial basis units, y_i = Σ_j (x_j − w_ij)² (LeNet-5's output layer). The centers
    are a buffer (the paper fixes them to ±1 bitmaps) unless trainable. Element-wise only."""

    def __init__(self, in_features: int, out_features: int, trainable: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features, self.trainable = in_features, out_features, trainable
        centers = torch.randint(0, 2, (out_features, in_features)).float() * 2 - 1
        if trainable:
            self.weight = nn.Parameter(centers)
        else:
            self.register_buffer("weight", centers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.unsqueeze(-2) - self.weight) ** 2).sum(-1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, trainable={self.trainable}"


class PositionBias(nn.Module):
    """A learnable bias for every element: x + b, with b of the input's shape (AlphaGo's policy head)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.bias = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


# -- general tensor operations (archcalc/layers/tensors.py) -------------------------------------


class Reshape(nn.Module):
    """x.reshape(N, *shape): the batch stays."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Permute(nn.Module):
    """x.permute(*dims), dims counting the batch (always first)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)  # a view, as torchvision's Permute gives: saved tensors share its storage

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Narrow(nn.Module):
    """x.narrow(dim, start, length): one part of a chunk or split."""

    def __init__(self, dim: int, start: int, length: int) -> None:
        super().__init__()
        self.dim, self.start, self.length = dim, start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.dim, self.start, self.length)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, length={self.length}"


class Elementwise(nn.Module):
    """One of torch's element-wise functions (sub, div, abs) over its inputs."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return getattr(torch, self.op)(*xs)

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class Reduce(nn.Module):
    """x.mean(dims) or x.sum(dims), dims counting the batch."""

    def __init__(self, op: str, dims: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.op, self.dims, self.keepdim = op, tuple(dims), keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(x, self.op)(dim=self.dims, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, dims={self.dims}, keepdim={self.keepdim}"


class Matmul(nn.Module):
    """torch.matmul of two tensors (FlopCounterMode counts it as bmm/mm)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, y)


class FreeParameter(nn.Module):
    """A learnable tensor with no input (a class token, a position table, a layer scale)."""

    free_tensor = "weight"  # all it holds: named in a spec, it is its container's Parameter (own_parameters)

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.weight = nn.Parameter(torch.randn(self.shape) * 0.02)

    def forward(self) -> torch.Tensor:
        return self.weight

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Pad(nn.Module):
    """F.pad(x, pads, mode, value): pads as F.pad counts them, last axis first."""

    def __init__(self, pads: tuple[int, ...], mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.mode, self.value = tuple(pads), mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return torch.nn.functional.pad(x, self.pads, value=self.value)
        return torch.nn.functional.pad(x, self.pads, mode=self.mode)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, mode={self.mode!r}, value={self.value}"


def padded_evenly(module: nn.Module, before: tuple[int, ...], after: tuple[int, ...] | None,
                  fill: float = 0.0) -> nn.Module:
    """A window module (conv, max pool) behind the F.pad its uneven padding (TensorFlow's SAME)
    needs; the module itself where the padding is even (it pads by itself)."""
    if after is None:
        return module
    pads = tuple(p for first, last in zip(reversed(before), reversed(after)) for p in (first, last))
    return nn.Sequential(Pad(pads, "constant", fill), module)


# -- resolution and extent (archcalc/layers/resample.py) -------------------------------------------


class ResizeLike(nn.Module):
    """F.interpolate(x, size=ref's spatial size): torchvision's segmentation heads resize to the input."""

    def __init__(self, mode: str = "nearest", align_corners: bool | None = None) -> None:
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        size = tuple(ref.shape[2:])
        return torch.nn.functional.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, align_corners={self.align_corners}"


class MaxUnpool(nn.Module):
    """F.max_unpool1d/2d/3d(x, indices) back to the pool's input size (output_size)."""

    def __init__(self, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                 output_size: tuple[int, ...]) -> None:
        super().__init__()
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding, self.output_size = tuple(padding), tuple(output_size)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        unpool = (f.max_unpool1d, f.max_unpool2d, f.max_unpool3d)[len(self.kernel_size) - 1]
        return unpool(x, indices, self.kernel_size, self.stride, self.padding, self.output_size)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"output_size={self.output_size}")


class UnpoolStandIn(nn.Module):
    """For the receptive-field probe: a depthwise transposed convolution of a max unpool's window
    (each pooled unit reaches every position of its window), cut or filled to the unpool's size;
    the second input (the stand-in pool's output) is not read."""

    def __init__(self, channels: int, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 padding: tuple[int, ...], output_size: tuple[int, ...]) -> None:
        super().__init__()
        self.stride, self.padding, self.output_size = tuple(stride), tuple(padding), tuple(output_size)
        self.weight = nn.Parameter(torch.ones(channels, 1, *kernel_size))

    def forward(self, x: torch.Tensor, _pooled: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        conv = (f.conv_transpose1d, f.conv_transpose2d, f.conv_transpose3d)[len(self.stride) - 1]
        y = conv(x, self.weight, None, self.stride, self.padding, groups=x.shape[1])
        pads = [p for have, want in zip(reversed(y.shape[2:]), reversed(self.output_size)) for p in (0, want - have)]
        return f.pad(y, pads)  # a negative pad cuts


class CenterCrop(nn.Module):
    """The centre of the spatial axes, offset ⌊(I − O)/2⌋ (U-Net's crop of a skip); a second input,
    where given, is the tensor whose size it takes."""

    def __init__(self, size: tuple[int, ...]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        size = tuple(ref.shape[2:]) if ref is not None else self.size
        for axis, want in enumerate(size, start=x.dim() - len(size)):
            x = x.narrow(axis, (x.shape[axis] - want) // 2, want)
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}"


class TransposedTie(nn.Module):
    """A linear layer whose weight is another layer's transposed: x·Wᵀ with W = owner.weight.t()
    (the owner keeps the one Parameter; sum(p.numel()) counts it once)."""

    def __init__(self, owner: nn.Module, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.owner = [owner]  # a list, so the owner is not registered twice as a submodule
        self.bias = bias if bias is None else nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.owner[0].weight.t(), self.bias)  # type: ignore[operator]


class Opaque(nn.Module):
    """What an unknown operation stands in for (`archcalc import --allow-unknown`): a tensor of its
    measured shape, and as many parameter and buffer elements as its module held. Its FLOPs are 0,
    as archcalc counts none for it."""

    def __init__(self, shape: tuple[int, ...], weights: int = 0, biases: int = 0, buffers: int = 0) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.weight = nn.Parameter(torch.zeros(weights)) if weights else None
        self.bias = nn.Parameter(torch.zeros(biases)) if biases else None
        if buffers:
            self.register_buffer("state", torch.zeros(buffers))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        batched = [x for x in xs if x.dim() > len(self.shape)]
        n = batched[0].shape[0] if batched else 1
        ref = xs[0] if xs else self.weight
        return torch.zeros((n, *self.shape), device=ref.device if ref is not None else None,
                           dtype=ref.dtype if ref is not None and ref.is_floating_point() else None)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
# -- regularisers (archcalc/layers/stochastic.py) -------------------------------------------------


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, x · bernoulli(1 − p) / (1 − p), one draw per
    sample (mode "row") or one for the batch ("batch"); the identity in eval or at p = 0."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
