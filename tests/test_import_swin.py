"""How the attention layer type reads torchvision's Swin, MaxViT and Swin V2 attention modules, without
torch or torchvision: `from_torch` reads the module by attribute, so stand-ins with the attributes
torchvision 0.29 gives them are enough. The whole models' round trips (every figure PyTorch's own) are
tests/test_import_reference.py's swin_t, swin_s and swin_b, made by tools/import_reference.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from archcalc import load_text
from archcalc.layers import REGISTRY
from archcalc.layers.imported import TorchCall, Unsupported
from archcalc.passes.analysis import analyze

SWIN = "torchvision.models.swin_transformer.ShiftedWindowAttention"


class Param:
    def __init__(self, trainable: bool = True) -> None:
        self.requires_grad = trainable


def linear(i: int, o: int, bias: bool = True, trainable: bool = True) -> Any:
    own = [Param(trainable)] * (2 if bias else 1)
    return SimpleNamespace(in_features=i, out_features=o, bias=object() if bias else None,
                           parameters=lambda recurse=True: iter(own))


def swin(dim: int = 96, heads: int = 3, shift: int = 3, qkv_bias: bool = True, proj_bias: bool = True,
         dropout: float = 0.0, trainable: bool = True) -> Any:
    """ShiftedWindowAttention(dim, [7, 7], [shift, shift], heads) as torchvision holds it."""
    table = [Param(trainable)]
    return SimpleNamespace(window_size=[7, 7], shift_size=[shift, shift], num_heads=heads, attention_dropout=0.0,
                           dropout=dropout, qkv=linear(dim, 3 * dim, qkv_bias, trainable),
                           proj=linear(dim, dim, proj_bias), parameters=lambda recurse=True: iter(table))


def read(module: Any, name: str = SWIN) -> str:
    emit = REGISTRY["attention"].from_torch(TorchCall(name, module, inputs=((56, 56, 96),), batched=(True,)))
    assert emit is not None
    return emit.text


def test_swin_window_attention_is_written_as_archcalcs_windowed_attention() -> None:
    assert read(swin()) == "attention/fused(heads=3, window=7, shift=3, rel_pos=true)"
    assert read(swin(shift=0, qkv_bias=False, proj_bias=False)) == \
        "attention/fused/nobias(heads=3, window=7, shift=0, rel_pos=true)"
    assert read(swin(qkv_bias=False)) == \
        "attention/fused/nobias(heads=3, window=7, shift=3, rel_pos=true, out_bias=true)"


def test_the_written_item_holds_the_modules_tensors() -> None:
    """dim 96, 3 heads, 7×7 windows: qkv 96·288 + 288, proj 96·96 + 96, the table 13·13·3; the index
    buffer 49·49 (torchvision's figures for swin_t's features.1.0.attn)."""
    text = f"input 56x56x96 as plain\n{read(swin())}\n"
    a = analyze(load_text(text, "swin.arch"))
    assert (a.totals.params, a.totals.counts.buffers) == (96 * 288 + 288 + 96 * 96 + 96 + 13 * 13 * 3, 49 * 49)


def test_what_archcalc_cannot_write_is_refused_with_the_reason() -> None:
    with pytest.raises(Unsupported, match="no dropout"):
        read(swin(dropout=0.1))
    with pytest.raises(Unsupported, match="frozen and some are not"):
        read(swin(trainable=False))  # the table and qkv frozen, proj not
    with pytest.raises(Unsupported, match="cosine attention"):
        read(swin(), SWIN + "V2")
    with pytest.raises(Unsupported, match="MaxViT"):
        read(SimpleNamespace(), "torchvision.models.maxvit.RelativePositionalMultiHeadAttention")


def test_patch_merging_reads_torchvisions_pad_and_slice_as_one_item() -> None:
    layer = REGISTRY["patch-merging"]
    assert "torchvision.models.swin_transformer._patch_merging_pad" in layer.torch_functions
    emit = layer.from_torch(TorchCall("torchvision.models.swin_transformer._patch_merging_pad", None,
                                      inputs=((56, 56, 96),)))
    assert emit is not None and emit.text == "patch-merging"
