"""PyTorch models written for the import tests (CI has torch but no torchvision): each is a style
of model people write, and each is imported, read back and compared with PyTorch's own figures.

Also importable as targets: `archcalc import tests/import_models.py:ResNetLike --input 3x32x32`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Basic(nn.Module):
    """A ResNet basic block: two 3×3 convs with BN, an identity or 1×1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.down is None else self.down(x)
        return self.relu(out + identity)


class ResNetLike(nn.Module):
    """Three stages of basic blocks (the same module class called per stage), global pool, FC."""

    def __init__(self, width: int = 16, blocks: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages, cin = [], width
        for i in range(3):
            cout = width * 2 ** i
            stages.append(nn.Sequential(Basic(cin, cout, 1 if i == 0 else 2),
                                        *[Basic(cout, cout) for _ in range(blocks - 1)]))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


class VGGLike(nn.Module):
    """VGG's configuration list, a classifier with dropout (torchvision's layout, smaller)."""

    def __init__(self, cfg: tuple = (16, "M", 32, "M", 64, 64, "M"), classes: int = 10, bn: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), *([nn.BatchNorm2d(v)] if bn else []), nn.ReLU(True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(cin * 4, 128), nn.ReLU(True), nn.Dropout(), nn.Linear(128, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(x.view(x.size(0), -1))


class Functional(nn.Module):
    """A forward full of functional calls: F.*, torch.*, tensor methods and operators."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 1)
        self.scale = nn.Parameter(torch.ones(1, 16, 1, 1))
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.conv1(x))
        b = torch.sigmoid(self.conv2(a)) * a  # a gate
        x = torch.cat([a, b], dim=1)
        x = F.max_pool2d(x, kernel_size=2, stride=2)
        x = x + F.leaky_relu(self.conv3(x), 0.2)
        x = x * self.scale
        x = F.avg_pool2d(x, 2)
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = x.flatten(1)
        x = F.dropout(x, p=0.1, training=self.training)
        return F.log_softmax(self.fc(x), dim=-1)


class Siamese(nn.Module):
    """One tower applied to two inputs: shared weights, counted once."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                   nn.Linear(8 * 7 * 7, 32))
        self.head = nn.Linear(32, 1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(torch.abs(self.tower(left) - self.tower(right))))


class Recursive(nn.Module):
    """One convolution applied three times (a shared leaf module)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.inp = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.inp(x))
        for _ in range(3):
            x = F.relu(self.conv(x))
        return x


class TiedLM(nn.Module):
    """A tiny language model whose output projection is its embedding (a tied parameter)."""

    def __init__(self, vocab: int = 100, dim: int = 16) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(torch.tanh(self.mix(self.wte(ids))))


class LSTMClassifier(nn.Module):
    """Embedding, a two-layer bidirectional LSTM, the last step, a linear head."""

    def __init__(self, vocab: int = 50, dim: int = 12, hidden: int = 10) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(ids))
        return self.fc(out[:, -1])


class WithInstanceNorm(nn.Module):
    """Operations archcalc has no rule for (nn.InstanceNorm1d, x.pow), for --allow-unknown."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = nn.InstanceNorm1d(3, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(x)).pow(2) + x


class DataDependent(nn.Module):
    """Control flow on a tensor's values, which tracing cannot follow."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return x


class LoopsOverATensor(nn.Module):
    """Loops over a tensor it computed: tracing does not know how many parts it has."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for part in self.fc(x).split(4, dim=-1):
            out = out * part
        return out


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * mask


def broken_factory() -> nn.Module:
    raise RuntimeError("the config file is missing")


def make_resnet(width: int = 8) -> nn.Module:
    return ResNetLike(width=width, blocks=2)


class Llama(nn.Module):
    """A Llama-style decoder built from a config (RMSNorm and rotary-free attention written out), for
    the large-model import on the meta device: 80 layers of width 8192 are 69 billion parameters."""

    def __init__(self, vocab: int = 32000, dim: int = 8192, layers: int = 80, heads: int = 64, kv_heads: int = 8,
                 ffn: int = 28672) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([LlamaBlock(dim, heads, kv_heads, ffn) for _ in range(layers)])
        self.norm = RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class LlamaBlock(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, ffn: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.attn_norm = RMSNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.ffn_norm = RMSNorm(dim)
        self.gate = nn.Linear(dim, ffn, bias=False)
        self.up = nn.Linear(dim, ffn, bias=False)
        self.down = nn.Linear(ffn, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(n, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.softmax(q @ k.transpose(-2, -1) / self.head_dim ** 0.5, dim=-1)
        x = x + self.o((scores @ v).transpose(1, 2).reshape(n, t, d))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Encoder(nn.Module):
    """A pre-norm transformer encoder as people write one with torch.nn: a class token and learned
    positions, LayerNorm, nn.MultiheadAttention (batch first) on a residual, an MLP, an RMS-normed
    head; a cross-attention reading the input tokens as its memory."""

    def __init__(self, dim: int = 32, heads: int = 4, tokens: int = 10) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True, bias=False)
        self.norm3 = nn.RMSNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = x
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        x = x + self.cross(x, memory, memory, need_weights=False)[0]
        return self.head(self.norm3(x)[:, 0])


class NormsAndShuffle(nn.Module):
    """Group norm and a channel shuffle (torch.nn's modules) in a small CNN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.shuffle = nn.ChannelShuffle(4)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.gn2 = nn.GroupNorm(2, 16, affine=False, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.gn2(self.conv2(self.shuffle(F.relu(self.gn(self.conv1(x)))))))


class MaskedAttention(nn.Module):
    """nn.MultiheadAttention with an attention mask: a form archcalc does not write."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.register_buffer("mask", torch.zeros(6, 6, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, attn_mask=self.mask, need_weights=False)[0]


class LayerNormMLP(nn.Module):
    """Linear, LayerNorm, GELU, Linear on a sequence (for the ONNX LayerNormalization node)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 8),
                                 nn.LayerNorm(8, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
