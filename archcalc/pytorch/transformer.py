"""The torch modules of archcalc's transformer layer types (`layers/attention.py`, `norms.py`,
`embeddings.py`, `transformer.py`, `stochastic.py`). Imported only by builders.

Attention runs in its eager (math) form — explicit `torch.matmul` for Q·Kᵀ and A·V, never
`F.scaled_dot_product_attention` or `nn.MultiheadAttention` — so FlopCounterMode counts every
product on CPU too (its CPU SDPA kernel counts 0, and nn.MultiheadAttention's no-grad fast path
hides the projections as well: docs/conventions.md, "Attention"). Parameters are laid out as the
modules they stand for hold them (nn.Linear, nn.MultiheadAttention's packed in-projection,
Hugging Face's Conv1D).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


class Conv1D(nn.Module):
    """Hugging Face's Conv1D (GPT-2): a linear layer whose weight is stored in × out, applied with addmm."""

    def __init__(self, nf: int, nx: int, bias: bool = True) -> None:
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(nf)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.nx)
        out = torch.addmm(self.bias, flat, self.weight) if self.bias is not None else torch.mm(flat, self.weight)
        return out.view(*x.shape[:-1], self.nf)

    def extra_repr(self) -> str:
        return f"nf={self.nf}, nx={self.nx}, bias={self.bias is not None}"


def _linear(features: int, out: int, bias: bool, conv1d: bool) -> nn.Module:
    return Conv1D(out, features, bias) if conv1d else nn.Linear(features, out, bias=bias)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding (RoFormer; Hugging Face's `apply_rotary_pos_emb`): the first d dims of
    each head turned by the angles, x·cos + rotate_half(x)·sin; x is N×heads×T×hd, angles N×T×d."""
    d = angles.shape[-1]
    cos, sin = angles.cos()[:, None].to(x.dtype), angles.sin()[:, None].to(x.dtype)
    turned, kept = x[..., :d], x[..., d:]
    half = torch.cat((-turned[..., d // 2:], turned[..., : d // 2]), dim=-1)
    return torch.cat((turned * cos + half * sin, kept), dim=-1)


class Attention(nn.Module):
    """Multi-head attention in eager form, parameters in the given layout (separate, fused, mha, conv1d)."""

    def __init__(self, layout: str, features: int, memory_features: int, heads: int, kv_heads: int, head_dim: int,
                 width: int, *, qkv_bias: bool = True, out_bias: bool = True, causal: bool = False,
                 cross: bool = False, rotary: int = 0, window: tuple[int, int] | None = None,
                 shift: tuple[int, int] = (0, 0), rel_pos: bool = False) -> None:
        super().__init__()
        self.layout, self.heads, self.kv_heads, self.head_dim = layout, heads, kv_heads, head_dim
        self.features, self.memory_features, self.width = features, memory_features, width
        self.qkv_bias, self.out_bias, self.rel_pos = qkv_bias, out_bias, rel_pos
        self.causal, self.cross, self.rotary = causal, cross, rotary
        self.window, self.shift = window, tuple(shift)
        q, kv = heads * head_dim, kv_heads * head_dim
        self.widths = (q, kv, kv)
        if layout == "separate":
            self.q = nn.Linear(features, q, bias=qkv_bias)
            self.k = nn.Linear(memory_features, kv, bias=qkv_bias)
            self.v = nn.Linear(memory_features, kv, bias=qkv_bias)
            self.out = nn.Linear(q, width, bias=out_bias)
        elif layout == "fused":
            self.qkv = nn.Linear(features, q + 2 * kv, bias=qkv_bias)
            self.proj = nn.Linear(q, width, bias=out_bias)
        elif layout == "mha":  # nn.MultiheadAttention's packed in-projection and out_proj
            self.in_proj_weight = nn.Parameter(torch.empty(q + 2 * kv, features))
            nn.init.xavier_uniform_(self.in_proj_weight)
            self.in_proj_bias = nn.Parameter(torch.zeros(q + 2 * kv)) if qkv_bias else None
            self.out_proj = nn.Linear(q, width, bias=out_bias)
        else:  # conv1d: GPT-2's c_attn and c_proj
            self.c_attn = Conv1D(q + 2 * kv, features, qkv_bias)
            self.c_proj = Conv1D(width, q, out_bias)
        self.relative_position_bias_table: nn.Parameter | None = None
        if rel_pos and window is not None:
            wh, ww = window
            self.relative_position_bias_table = nn.Parameter(
                torch.empty((2 * wh - 1) * (2 * ww - 1), heads).normal_(std=0.02))
            self.register_buffer("relative_position_index", _relative_index(wh, ww))

    def extra_repr(self) -> str:
        extra = f", window={self.window}, shift={self.shift}" if self.window else ""
        return (f"layout={self.layout!r}, heads={self.heads}, kv_heads={self.kv_heads}, head_dim={self.head_dim}, "
                f"causal={self.causal}, cross={self.cross}, rotary={self.rotary}{extra}")

    # -- projections ------------------------------------------------------------------------
    def _project(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.layout == "separate":
            return self.q(x), self.k(memory), self.v(memory)
        if self.layout == "fused":
            q, k, v = F.linear(x, self.qkv.weight, self.qkv.bias).split(self.widths, dim=-1)
            return q, k, v
        if self.layout == "mha":
            if memory is x:
                q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(self.widths, dim=-1)
                return q, k, v
            w_q, w_kv = self.in_proj_weight.split((self.widths[0], 2 * self.widths[1]))
            b_q, b_kv = (None, None) if self.in_proj_bias is None else \
                self.in_proj_bias.split((self.widths[0], 2 * self.widths[1]))
            k, v = F.linear(memory, w_kv, b_kv).split(self.widths[1:], dim=-1)
            return F.linear(x, w_q, b_q), k, v
        q, k, v = self.c_attn(x).split(self.widths, dim=-1)
        return q, k, v

    def _output(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "separate":
            return self.out(x)
        if self.layout == "fused":
            return F.linear(x, self.proj.weight, self.proj.bias)
        if self.layout == "mha":
            return F.linear(x, self.out_proj.weight, self.out_proj.bias)
        return self.c_proj(x)

    def _heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        """N×T×(heads·hd) → N×heads×T×hd."""
        return x.view(*x.shape[:-1], heads, self.head_dim).transpose(1, 2)

    # -- attention ---------------------------------------------------------------------------
    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """softmax(Q·Kᵀ/√hd + bias)·V with explicit matmuls (counted as bmm); kv heads repeated first."""
        if self.kv_heads != self.heads:
            repeat = self.heads // self.kv_heads
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.head_dim ** -0.5
        if bias is not None:
            scores = scores + bias
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        if self.window is not None:
            return self._windowed(x)
        memory = rest[0] if self.cross else x
        angles = rest[-1] if self.rotary else None
        q, k, v = self._project(x, memory)
        q, k, v = self._heads(q, self.heads), self._heads(k, self.kv_heads), self._heads(v, self.kv_heads)
        if angles is not None:
            q, k = rotate(q, angles), rotate(k, angles)
        bias = None
        if self.causal:
            t = x.shape[1]
            hidden = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            bias = torch.zeros(t, t, dtype=q.dtype, device=x.device).masked_fill(hidden, torch.finfo(q.dtype).min)
        context = self._attend(q, k, v, bias)
        return self._output(context.transpose(1, 2).reshape(*x.shape[:2], self.widths[0]))

    def _windowed(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision's `shifted_window_attention` on an N×H×W×C map whose sides the window divides."""
        n, h, w, _ = x.shape
        (wh, ww), (sh, sw) = self.window or (0, 0), self.shift
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        rows, cols = h // wh, w // ww
        tokens = wh * ww
        x = x.reshape(n, rows, wh, cols, ww, -1).permute(0, 1, 3, 2, 4, 5).reshape(n * rows * cols, tokens, -1)
        q, k, v = self._project(x, x)
        q, k, v = self._heads(q, self.heads), self._heads(k, self.kv_heads), self._heads(v, self.kv_heads)
        bias = None
        if self.relative_position_bias_table is not None:
            table = self.relative_position_bias_table[self.relative_position_index]  # type: ignore[index]
            bias = table.view(tokens, tokens, -1).permute(2, 0, 1)[None]
        if sh or sw:
            mask = _shift_mask(h, w, (wh, ww), (sh, sw), x).repeat(n, 1, 1)[:, None]
            bias = mask if bias is None else bias + mask
        context = self._attend(q, k, v, bias).transpose(1, 2).reshape(n * rows * cols, tokens, self.widths[0])
        out = self._output(context)
        out = out.view(n, rows, cols, wh, ww, -1).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, -1)
        return torch.roll(out, shifts=(sh, sw), dims=(1, 2)) if sh or sw else out


def _relative_index(wh: int, ww: int) -> torch.Tensor:
    """torchvision's relative_position_index: (h_i − h_j + wh − 1)·(2·ww − 1) + (w_i − w_j + ww − 1)."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += wh - 1
    relative[:, :, 1] += ww - 1
    relative[:, :, 0] *= 2 * ww - 1
    return relative.sum(-1).flatten()


def _shift_mask(h: int, w: int, window: tuple[int, int], shift: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """torchvision's mask for shifted windows: −100 between tokens of different regions, windows × N × N."""
    mask = like.new_zeros((h, w))
    h_slices = ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None))
    w_slices = ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None))
    count = 0
    for top, bottom in h_slices:
        for left, right in w_slices:
            mask[top:bottom, left:right] = count
            count += 1
    mask = mask.view(h // window[0], window[0], w // window[1], window[1]).permute(0, 2, 1, 3)
    mask = mask.reshape(-1, window[0] * window[1])
    diff = mask.unsqueeze(1) - mask.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU, "gelu-tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU, "silu": nn.SiLU,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """The position-wise feed-forward block: fc1, activation, [dropout], fc2; or gated (SwiGLU, GeGLU):
    down(act(gate(x)) · up(x)), called in that order (Hugging Face's LLaMA MLP)."""

    def __init__(self, features: int, hidden: int, out: int, activation: str, gated: bool = False,
                 biased: bool = True, inner_dropout: float | None = None, conv1d: bool = False) -> None:
        super().__init__()
        self.features, self.hidden, self.out, self.activation = features, hidden, out, activation
        self.gated, self.biased, self.inner_dropout, self.conv1d = gated, biased, inner_dropout, conv1d
        act, bias, dropout = activation, biased, inner_dropout
        if gated:
            self.gate = _linear(features, hidden, bias, conv1d)
            self.act = ACTIVATIONS[act]()
            self.up = _linear(features, hidden, bias, conv1d)
            self.down = _linear(hidden, out, bias, conv1d)
        else:
            self.fc1 = _linear(features, hidden, bias, conv1d)
            self.act = ACTIVATIONS[act]()
            self.dropout = nn.Dropout(dropout) if dropout is not None else None
            self.fc2 = _linear(hidden, out, bias, conv1d)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}, gated={self.gated}, biased={self.biased}, conv1d={self.conv1d}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down(self.act(self.gate(x)) * self.up(x))
        h = self.act(self.fc1(x))
        return self.fc2(self.dropout(h) if self.dropout is not None else h)


class SequentialMLP(nn.Sequential):
    """The position-wise MLP as one nn.Sequential, as torchvision writes it (ViT's MLPBlock, Swin's ops.MLP):
    Linear, activation, [Dropout], Linear, so that its linears are `0` and `3` (`0` and `2` without dropout)."""

    def __init__(self, features: int, hidden: int, out: int, activation: str, biased: bool = True,
                 inner_dropout: float | None = None) -> None:
        layers = [nn.Linear(features, hidden, bias=biased), ACTIVATIONS[activation]()]
        if inner_dropout is not None:
            layers.append(nn.Dropout(inner_dropout))
        super().__init__(*layers, nn.Linear(hidden, out, bias=biased))
        self.features, self.hidden, self.out, self.activation = features, hidden, out, activation
        self.biased, self.inner_dropout = biased, inner_dropout


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d (ConvNeXt): layer norm over the channels of N×C×… at each position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class Rotary(nn.Module):
    """The rotary table (Hugging Face's LlamaRotaryEmbedding): inv_freq[j] = 1/base^(2j/d) as a buffer (and its
    copy `original_inv_freq`); the forward gives the angles t·inv_freq, twice (N×T×d), from which each
    attention layer takes cos and sin."""

    def __init__(self, dim: int, base: float = 10000.0, copy: bool = True) -> None:
        super().__init__()
        self.dim, self.base, self.copy = dim, base, copy
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        if copy:
            self.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)
        inv_freq: torch.Tensor = self.inv_freq  # type: ignore[assignment]
        freqs = t[:, None] * inv_freq.float()[None, :]
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.expand(x.shape[0], -1, -1).to(x.dtype if x.is_floating_point() else torch.float32)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}, copy={self.copy}"


class PositionEmbedding(nn.Module):
    """x + a learned position table: rows 0..T−1 of an nn.Embedding-like weight (GPT-2's wpe, BERT's
    position_embeddings), or a (1, N, F) parameter added whole (torchvision's ViT)."""

    def __init__(self, positions: int, features: int, whole: bool = False, ids: bool = False) -> None:
        super().__init__()
        self.positions, self.features, self.whole, self.ids = positions, features, whole, ids
        # /whole holds nothing but its table: named in a spec, the table is its container's Parameter
        self.free_tensor = "pos_embedding" if whole else None
        if whole:
            self.pos_embedding = nn.Parameter(torch.empty(1, positions, features).normal_(std=0.02))
        else:
            self.weight = nn.Parameter(torch.randn(positions, features))
        if ids:
            self.register_buffer("position_ids", torch.arange(positions).expand((1, -1)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.whole:
            return x + self.pos_embedding
        return x + F.embedding(torch.arange(x.shape[1], device=x.device), self.weight)


class TokenTypeEmbedding(nn.Module):
    """x + the row of token type 0 (BERT's token_type_embeddings with its default ids); `default_ids`
    keeps those zero ids as a buffer, as Hugging Face's BertEmbeddings does."""

    def __init__(self, types: int, features: int, default_ids: int | None = None) -> None:
        super().__init__()
        self.types, self.features, self.default_ids = types, features, default_ids
        self.weight = nn.Parameter(torch.randn(types, features))
        if default_ids:
            self.register_buffer("token_type_ids", torch.zeros((1, default_ids), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = torch.zeros(x.shape[1], dtype=torch.long, device=x.device)
        return x + F.embedding(ids, self.weight)


class Sinusoidal(nn.Module):
    """x + the sinusoidal table of Vaswani et al. (2017): sin on even features, cos on odd ones."""

    def __init__(self, base: float = 10000.0) -> None:
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, f = x.shape[1], x.shape[2]
        pos = torch.arange(t, device=x.device, dtype=torch.float32)[:, None]
        rate = torch.exp(torch.arange(0, f, 2, device=x.device, dtype=torch.float32) * (-math.log(self.base) / f))
        table = torch.zeros(t, f, device=x.device)
        table[:, 0::2] = torch.sin(pos * rate)
        table[:, 1::2] = torch.cos(pos * rate)[:, : f // 2]
        return x + table.to(x.dtype)


class ClassToken(nn.Module):
    """A learned token put in front of the sequence (torchvision's ViT class_token, (1, 1, F), zeros)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = features
        self.class_token = nn.Parameter(torch.zeros(1, 1, features))

    free_tensor = "class_token"  # all it holds: named in a spec, it is its container's Parameter (own_parameters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)


class TakeToken(nn.Module):
    """x[:, index]: one position of a sequence (ViT's class token for the head, BERT's pooler input)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return f"index={self.index}"


class LayerScale(nn.Module):
    """x · γ with γ learned per channel (ConvNeXt: (C, 1, 1), initialised to 1e-6)."""

    def __init__(self, shape: tuple[int, ...], init: float) -> None:
        super().__init__()
        self.shape, self.init = tuple(shape), init
        self.layer_scale = nn.Parameter(torch.full(shape, init))

    free_tensor = "layer_scale"  # all it holds: named in a spec, it is its container's Parameter (own_parameters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.layer_scale


class PatchMerging(nn.Module):
    """Swin's patch merging rearrangement: N×H×W×C → N×⌈H/2⌉×⌈W/2⌉×4C, the four 2×2 neighbours in
    torchvision's order (x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]); odd sides padded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = [x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]]
        return torch.cat(parts, -1)
