"""Hugging Face models (transformers 5) made traceable by torch.fx, for the PyTorch importer.

transformers 5's forwards do not trace as they are: the root forward is a decorator's
`**kwargs`, the forward keeps a cache and returns a ModelOutput unless told otherwise, and the
mask builders (`create_causal_mask`, `create_bidirectional_mask`) decide from tensor values.
`traceable(model)` changes three things for the length of an import, and puts them back after:

- the model's class becomes a subclass whose forward is `forward(input_ids)`, calling the
  model's own forward with `use_cache=False, return_dict=False` (every module path and class
  name stays the model's own);
- the mask builders return None: with no padding there is no mask to apply, and the causal
  mask is the attention layer type's `causal=true`, which masks nothing FlopCounterMode counts
  (an elementwise add); the figures measured are those of the same forward with its mask;
- attention runs eagerly (`config._attn_implementation = "eager"`): SDPA's CPU kernel has no
  FLOP formula, so FlopCounterMode would count its products as 0.

Hugging Face's attention and MLP modules are leaves the layer types declare
(`GPT2Attention` → `attention/conv1d/causal`, `GPT2MLP` → `mlp(conv1d=true)`,
`BertSelfAttention` with its output projection → `attention`); the position and token type
embeddings (an `nn.Embedding` read at ids the forward makes itself, from `torch.arange` or a
buffer, added to the token embedding) are recognised by the importer (`torch_trace`).

torch and transformers are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

MASK_BUILDERS = ("create_causal_mask", "create_bidirectional_mask", "create_sliding_window_causal_mask")


def is_hugging_face(module: Any) -> bool:
    return type(module).__module__.startswith("transformers.")


def _no_mask(*_args: Any, **_kwargs: Any) -> None:
    return None


@contextlib.contextmanager
def traceable(model: Any) -> Iterator[Any]:
    """The model with a plain `forward(input_ids)`, no mask builders and eager attention."""
    original = type(model)

    def forward(self: Any, input_ids: Any) -> Any:
        out = original.forward(self, input_ids=input_ids, use_cache=False, return_dict=False)
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out

    traced = type(original.__name__, (original,), {"forward": forward, "__module__": original.__module__,
                                                   "__qualname__": original.__qualname__})
    patched: list[tuple[Any, str, Any]] = []
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name.startswith("transformers.models.") or name == "transformers.masking_utils"):
            continue
        for builder in MASK_BUILDERS:
            if callable(getattr(mod, builder, None)):
                patched.append((mod, builder, getattr(mod, builder)))
                setattr(mod, builder, _no_mask)
    configs = {id(c): c for m in model.modules() if (c := getattr(m, "config", None)) is not None
               and hasattr(c, "_attn_implementation")}
    implementations = [(c, c._attn_implementation) for c in configs.values()]
    try:
        for c, _ in implementations:
            c._attn_implementation = "eager"
        model.__class__ = traced
        yield model
    finally:
        model.__class__ = original
        for c, impl in implementations:
            c._attn_implementation = impl
        for mod, builder, value in patched:
            setattr(mod, builder, value)


def input_dtypes() -> dict[str, Any]:
    import torch

    return {"input_ids": torch.long}


def added_embedding(kind: str, module: Any, buffers: tuple[Any, ...]) -> str:
    """The item for `x + embedding(ids)` at ids the forward makes itself: 'positions' (0..T−1, from
    torch.arange or a `position_ids` buffer) or 'types' (the zero ids of a `token_type_ids` buffer)."""
    from archcalc.layers.imported import Unsupported

    if module.padding_idx is not None or module.max_norm is not None:
        raise Unsupported("an embedding at made ids with padding_idx or max_norm")
    held = sum(b.numel() for b in buffers)
    if kind == "types":
        if len(buffers) != 1:
            raise Unsupported("token type ids read from other than one token_type_ids buffer")
        return f"token-type-embedding(types={module.num_embeddings}, max={held})"
    if buffers and held != module.num_embeddings:
        raise Unsupported(f"a position ids buffer of {held} for {module.num_embeddings} positions")
    return f"position-embedding(max={module.num_embeddings}" + (", ids=true)" if buffers else ")")
