"""Attention, one layer type with the options real models use.

`attention(heads=12)` reads a sequence T×F and gives T×dim (dim = F unless given): projections of
the input to queries (heads × head_dim), keys and values (kv_heads × head_dim each: fewer for
multi-query and grouped-query attention), the scores Q·Kᵀ of every query against every key, the
softmax, A·V, and the output projection. Its parameters are laid out as the PyTorch modules hold
them (`layout`):

- `separate`: q, k, v and out linear layers (Hugging Face's BERT `query/key/value/dense`, LLaMA's
  `q_proj/k_proj/v_proj/o_proj`), each called as a module;
- `fused`: one qkv linear layer (heads + 2·kv_heads)·head_dim wide and a proj layer, applied with
  F.linear on their weights (torchvision's Swin `qkv`/`proj`);
- `mha`: nn.MultiheadAttention's `in_proj_weight` (3E×E), `in_proj_bias` and `out_proj`;
- `conv1d`: GPT-2's `c_attn`/`c_proj` Conv1D modules, fused, weights stored in×out.

Options: `bias` (every projection; `out_bias` for the output one alone), `causal` (a decoder's
mask), `window`/`shift` (Swin's windows of w×w tokens over an H×W×C map, shifted by `shift`),
`rel_pos` (Swin's relative position bias table, (2w−1)²×heads, and its index buffer, w⁴ elements),
`rotary` (the last input is a `rotary` layer's angle table, applied to queries and keys),
cross-attention (a second input: the keys and values come from it) and `cache` (a decoder keeps
its keys and values: on by default where `causal`).

MACs (FlopCounterMode's count of the eager/math form): the four projections, plus Q·Kᵀ and A·V
over the full T×T (per window for Swin, for every query head: grouped-query attention repeats
its kv heads first), `heads·T·T·head_dim` each. Scaling, masks, biases, the softmax and the
rotation are other ops. The causal-aware figure (`causal_macs`) counts only the lower triangle
of the two T×T products, T·(T + 1)/2 of them; it is a figure of its own, never the MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    Gradients,
    LayerArgError,
    LayerType,
    OtherOps,
    Part,
    Saved,
    Shaped,
    per_axis,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, TorchCall, Unsupported, frozen_state, size_text
from archcalc.layers.window import GLOBAL, UNKNOWN
from archcalc.records import record
from archcalc.tensor import Shape, format_shape, prod

LAYOUTS = ("separate", "fused", "mha", "conv1d")


@record
class Sizes:
    """Everything an attention layer's rules read, checked once (`sizes`)."""

    query: Shape  # the query input, features last
    memory: Shape | None  # a cross-attention's second input (keys and values come from it)
    rope: Shape | None  # the rotary angle table T×d, when `rotary`
    heads: int
    kv_heads: int
    head_dim: int
    width: int  # the output's features
    window: tuple[int, int] | None
    shift: tuple[int, int]  # as run: 0 where the window covers the whole map (torchvision's rule)

    @property
    def features(self) -> int:
        return self.query[-1]

    @property
    def memory_features(self) -> int:
        return (self.memory or self.query)[-1]

    @property
    def tokens(self) -> int:
        """Query positions (H·W for a windowed map)."""
        return prod(self.query[:-1])

    @property
    def memory_tokens(self) -> int:
        """Positions the key and value projections run over."""
        return prod((self.memory or self.query)[:-1])

    @property
    def keys(self) -> int:
        """Keys each query is scored against: the window's w·w, or every key position."""
        return prod(self.window) if self.window else self.memory_tokens

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def scores(self) -> int:
        """Elements of the score tensor Q·Kᵀ (and of the attention weights A): heads · T · keys."""
        return self.heads * self.tokens * self.keys


def sizes(a: Args, inputs: Sequence[Shape]) -> Sizes:
    """The attention's sizes from its arguments and inputs, or the LayerArgError saying what is wrong."""
    rest = list(inputs[:-1] if a["rotary"] else inputs)
    rope = inputs[-1] if a["rotary"] else None
    if a["rotary"] and len(inputs) < 2:
        raise LayerArgError("rotary=true reads the rotary table as the last input: attention(@x, @rope, …)")
    if len(rest) > 2:
        raise LayerArgError(f"attention reads a query input and at most one memory, got {len(rest)} inputs")
    query, memory = rest[0], (rest[1] if len(rest) == 2 else None)
    if len(query) < 2:
        raise LayerArgError(f"attention reads a sequence T×F, got {format_shape(query)}")
    features = query[-1]
    width = a["dim"] or features
    heads, kv_heads = a["heads"], a["kv_heads"] or a["heads"]
    head_dim = a["head_dim"]
    if head_dim is None:
        if width % heads:
            raise LayerArgError(f"{heads} heads do not divide the width {width} (head_dim would be "
                                f"{width / heads:.4g}); give head_dim=N for heads of another width", arg="heads")
        head_dim = width // heads
    if heads % kv_heads:
        raise LayerArgError(f"kv_heads={kv_heads} does not divide heads={heads}: grouped-query attention shares "
                            f"each key/value head among heads/kv_heads query heads", arg="kv_heads")
    window, shift = _window(a, query, memory, rope)
    if memory is not None:
        if len(memory) != 2:
            raise LayerArgError(f"cross-attention reads a memory sequence T×F, got {format_shape(memory)}")
        if a["causal"]:
            raise LayerArgError("causal=true masks a sequence against itself; cross-attention has no such mask")
        if a["layout"] in ("fused", "conv1d"):
            raise LayerArgError(f"layout={a['layout']} projects one input to q, k and v at once; cross-attention "
                                f"needs layout=separate (or mha)")
    s = Sizes(tuple(query), memory and tuple(memory), rope and tuple(rope), heads, kv_heads, head_dim, width,
              window, shift)
    if a["layout"] == "mha":
        _check_mha(s)
    if rope is not None:
        _check_rope(s, rope)
    if len(query) > 2 and window is None:
        raise LayerArgError(f"attention reads a sequence T×F, got {format_shape(query)} (windowed attention over "
                            f"an H×W×C map takes window=N)")
    return s


def _window(a: Args, query: Shape, memory: Shape | None, rope: Shape | None) -> tuple[Any, tuple[int, int]]:
    if a["window"] is None:
        if a["shift"] != (0,):
            raise LayerArgError("shift=… moves Swin's windows: it needs window=N")
        if a["rel_pos"]:
            raise LayerArgError("rel_pos=true is Swin's relative position bias table within a window: it needs "
                                "window=N")
        return None, (0, 0)
    if len(query) != 3 or a.get("query_layout") == "channels":
        raise LayerArgError(f"windowed attention reads a channels-last map H×W×C (features last, as after "
                            f"permute(0, 2, 3, 1)), got {format_shape(query)}"
                            + (" channels first" if a.get("query_layout") == "channels" else ""))
    if memory is not None or rope is not None or a["causal"]:
        raise LayerArgError("windowed attention (Swin's) is self-attention without a causal mask or rotary table")
    window = per_axis(a["window"], 2, "window")
    shift = per_axis(a["shift"], 2, "shift")
    size = query[:2]
    if any(s % w for s, w in zip(size, window)):
        padded = tuple(-(-s // w) * w for s, w in zip(size, window))
        rows, cols = padded[0] - size[0], padded[1] - size[1]
        raise LayerArgError(
            f"window {format_shape(window)} does not divide the {format_shape(size)} map: torchvision's Swin pads it "
            f"to {format_shape(padded)} (F.pad: {rows} row{'s' * (rows != 1)} at the bottom, {cols} "
            f"column{'s' * (cols != 1)} at the right, zeros) and attends over the padding too; pad the map "
            f"yourself (pad(…)) or choose a window that divides it", arg="window")
    if any(not 0 <= s < w for s, w in zip(shift, window)):
        raise LayerArgError(f"shift {format_shape(shift)} must be smaller than the window {format_shape(window)}")
    # torchvision: "If window size is larger than feature size, there is no need to shift window"
    run = tuple(0 if w >= s else k for k, w, s in zip(shift, window, size))
    return window, (run[0], run[1])


def _check_mha(s: Sizes) -> None:
    """nn.MultiheadAttention: embed_dim = the query's features = heads · head_dim = the output; no GQA."""
    if s.kv_heads != s.heads:
        raise LayerArgError("nn.MultiheadAttention has no grouped-query form: layout=mha needs kv_heads = heads")
    if not s.features == s.q_width == s.width:
        raise LayerArgError(f"nn.MultiheadAttention maps embed_dim to embed_dim: the input's {s.features} features, "
                            f"heads·head_dim = {s.q_width} and the output's {s.width} must agree")
    if s.memory is not None and s.memory_features != s.features:
        raise LayerArgError(f"layout=mha packs q, k and v of one width ({s.features}); a memory of "
                            f"{s.memory_features} features needs layout=separate")


def _check_rope(s: Sizes, rope: Shape) -> None:
    if len(rope) != 2:
        raise LayerArgError(f"the rotary table is T×d (a rotary layer's output), got {format_shape(rope)}")
    if rope[0] != s.tokens:
        raise LayerArgError(f"the rotary table covers {rope[0]} positions, the queries {s.tokens}")
    if rope[1] > s.head_dim or rope[1] % 2:
        raise LayerArgError(f"the rotary table rotates {rope[1]} dims of each head; it must be even and at most "
                            f"head_dim={s.head_dim}")


@register
class Attention(LayerType):
    name = "attention"
    aliases = ("mha", "self-attention", "multihead-attention", "multiheadattention", "attn")
    flags = {
        "nobias": ("bias", False), "bias": ("bias", True), "causal": ("causal", True), "relpos": ("rel_pos", True),
        "rope": ("rotary", True), "rotary": ("rotary", True), "cache": ("cache", True), "nocache": ("cache", False),
        **{layout: ("layout", layout) for layout in LAYOUTS}, "frozen": ("frozen", True),
    }
    args = (
        Arg("heads", "int", required=True, aliases=("num_heads", "n_head", "h"), minimum=1),
        Arg("kv_heads", "int", None, aliases=("num_key_value_heads", "n_kv_heads", "kv"), minimum=1),
        Arg("head_dim", "int", None, aliases=("hd", "d_head"), minimum=1),
        Arg("dim", "int", None, aliases=("width", "embed_dim", "d_model", "out"), minimum=1),
        Arg("layout", "str", "separate", choices=LAYOUTS),
        Arg("bias", "bool", True, aliases=("qkv_bias",)),
        Arg("out_bias", "bool", None, aliases=("proj_bias",)),
        Arg("causal", "bool", False),
        Arg("window", "size", None, aliases=("window_size",), minimum=1),
        Arg("shift", "size", (0,), aliases=("shift_size",), minimum=0),
        Arg("rel_pos", "bool", False, aliases=("relative_position_bias",)),
        Arg("rotary", "bool", False, aliases=("rope",)),
        Arg("cache", "bool", None, aliases=("kv_cache",)),
        Arg("frozen", "bool", False),
    )
    kind = "attention"
    path_depth = 2  # two linear layers in a row (q/k/v then out; fc1 then fc2)
    layout = "sequence"
    min_inputs = 1
    max_inputs = 3
    summary = ("multi-head attention: q, k, v projections (kv_heads for grouped/multi-query), Q·Kᵀ and A·V over "
               "the full T×T, the output projection; layout separate|fused|mha|conv1d, /causal, /nobias, "
               "window/shift/relpos (Swin), a memory input (cross-attention), /rope with a rotary table")
    example = ("attention(heads=12), attention/causal/nobias(heads=8, kv_heads=2), attention(@x, @memory, heads=8), "
               "attention/fused/relpos(heads=3, window=7, shift=3)")

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "query_layout": layouts[0]}

    torch_modules = ("torch.nn.MultiheadAttention", "torchvision.models.swin_transformer.ShiftedWindowAttention",
                     "transformers.models.gpt2.modeling_gpt2.GPT2Attention",
                     "transformers.models.bert.modeling_bert.BertSelfAttention",
                     # read only to say why archcalc cannot write them (one clear line, not their inner ops)
                     "torchvision.models.swin_transformer.ShiftedWindowAttentionV2",
                     "torchvision.models.maxvit.RelativePositionalMultiHeadAttention")

    def from_torch(self, call: TorchCall) -> Emit | None:
        """nn.MultiheadAttention and Hugging Face's attention (`_from_mha`) or torchvision's Swin window
        attention (`_from_swin`);
        Swin V2's and MaxViT's attention are listed with what archcalc's attention lacks for them."""
        if call.name.endswith("ShiftedWindowAttentionV2"):
            raise Unsupported("Swin V2's attention is scaled cosine attention (q and k normalised, a learnt "
                              "logit_scale per head) with a continuous position bias an MLP (cpb_mlp) computes "
                              "from a coordinate table; archcalc's attention is dot-product attention with a bias "
                              "table")
        if call.name.endswith("RelativePositionalMultiHeadAttention"):
            raise Unsupported("MaxViT's block and grid attention runs over partitions G×P×D (einsum products, "
                              "keys scaled by feat_dim^-0.5, a relative position bias over the P tokens); "
                              "archcalc's attention reads a sequence T×F or an H×W×C map in windows")
        if call.name.endswith("ShiftedWindowAttention"):
            return self._from_swin(call)
        return self._from_mha(call)

    def _from_swin(self, call: TorchCall) -> Emit | None:
        """torchvision's ShiftedWindowAttention (Swin V1), a leaf: its qkv and proj Linear layers are
        applied with F.linear on their weights inside `shifted_window_attention`, with the relative
        position bias its table and index buffer give: `attention/fused(heads=H, window=w, shift=s,
        rel_pos=true)` (/nobias where qkv has none). Its dropouts are no-ops in eval mode and must be 0
        (archcalc's attention has none)."""
        m = call.module
        if m.attention_dropout or m.dropout:
            raise Unsupported(f"attention_dropout={m.attention_dropout}, dropout={m.dropout}: archcalc's "
                              f"attention has no dropout (0.0 in torchvision's Swin models)")
        qkv_bias, proj_bias = m.qkv.bias is not None, m.proj.bias is not None
        if m.qkv.out_features != 3 * m.qkv.in_features or m.proj.in_features != m.qkv.in_features:
            raise Unsupported("qkv other than dim → 3·dim, or proj other than dim → …")
        window, shift = size_text(tuple(m.window_size)), size_text(tuple(m.shift_size))
        frozen = {frozen_state(part) for part in (m, m.qkv, m.proj)}  # its table, qkv's and proj's tensors
        if len(frozen) > 1:
            raise Unsupported("some of its parameters are frozen and some are not")
        text = "attention/fused" + ("" if qkv_bias else "/nobias") + ("/frozen" if frozen.pop() else "")
        out = "" if proj_bias == qkv_bias else f", out_bias={str(proj_bias).lower()}"
        return Emit(f"{text}(heads={m.num_heads}, window={window}, shift={shift}, rel_pos=true{out})")

    def _from_mha(self, call: TorchCall) -> Emit | None:
        """nn.MultiheadAttention(E, H, batch_first=True) called as (x, x, x) or (x, memory, memory),
        without a mask: `attention/mha(heads=H)`; its output is element 0 of what it returns.
        Hugging Face's GPT2Attention: `attention/conv1d/causal`; BertSelfAttention, with the output
        projection its BertAttention applies next (attention.output.dense): `attention`."""
        m = call.module
        if call.name.startswith("transformers."):
            return self._from_hugging_face(call)
        if not m.batch_first:
            raise Unsupported("batch_first=False: the batch is not the first axis (archcalc keeps it first)")
        if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
            raise Unsupported("kdim/vdim other than embed_dim, add_bias_kv or add_zero_attn")
        masks = [call.arg(i, k) for i, k in ((3, "key_padding_mask"), (5, "attn_mask"))]
        if any(x is not None for x in masks) or call.kwargs.get("is_causal"):
            raise Unsupported("a mask: archcalc's attention attends to every position (or /causal, written so)")
        if len(call.same) != 3 or call.same[1] != call.same[2]:
            raise Unsupported("keys and values from different tensors")
        cross = call.same[1] != call.same[0]
        bias = m.in_proj_bias is not None
        out_bias = m.out_proj.bias is not None
        if bias != out_bias:
            raise Unsupported("a bias on the in-projection but not on out_proj (or the reverse)")
        text = "attention/mha" + ("" if bias else "/nobias") + ("/frozen" if frozen_state(m) else "")
        return Emit(f"{text}(heads={m.num_heads})", inputs=(0, 1) if cross else (0,), element=0)

    def _from_hugging_face(self, call: TorchCall) -> Emit:
        """Self-attention over the hidden states; the mask builders return None while tracing (the causal
        mask is /causal); cross-attention, a cache and relative positions are listed."""
        m = call.module
        if any(call.kwargs.get(k) is not None for k in ("encoder_hidden_states", "attention_mask", "cache",
                                                         "past_key_values")):
            raise Unsupported("a mask, a cache or cross-attention (encoder_hidden_states)")
        frozen = "/frozen" if frozen_state(m) else ""
        if call.name.endswith("GPT2Attention"):
            if m.is_cross_attention:
                raise Unsupported("cross-attention (is_cross_attention): archcalc writes GPT-2's self-attention")
            if m.reorder_and_upcast_attn:
                raise Unsupported("reorder_and_upcast_attn=True (scores upcast to float32 by a baddbmm): archcalc's "
                                  "attention is written for the eager path")
            return Emit(f"attention/conv1d/causal{frozen}(heads={m.num_heads})", inputs=(0,), element=0)
        if getattr(m, "position_embedding_type", "absolute") != "absolute" or m.is_decoder or m.is_causal:
            raise Unsupported("relative position embeddings or a decoder's causal self-attention")
        biases = {p.bias is not None for p in (m.query, m.key, m.value)}
        if biases != {True}:
            raise Unsupported("query, key or value without a bias")
        return Emit(f"attention{frozen}(heads={m.num_attention_heads})", inputs=(0,), element=0,
                    absorbs="output.dense")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        s = sizes(a, inputs)
        return Shaped((*s.query[:-1], s.width))

    # -- parameters --------------------------------------------------------------------
    def _biases(self, a: Args) -> tuple[bool, bool]:
        """(q/k/v biases, output bias)."""
        return a["bias"], a["bias"] if a["out_bias"] is None else a["out_bias"]

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        s = sizes(a, inputs)
        qkv_bias, out_bias = self._biases(a)
        weights = s.features * s.q_width + 2 * s.memory_features * s.kv_width + s.q_width * s.width
        biases = (s.q_width + 2 * s.kv_width if qkv_bias else 0) + (s.width if out_bias else 0)
        buffers = 0
        if a["rel_pos"] and s.window:
            weights += self._table(s)
            buffers = prod(s.window) ** 2
        return Counts(weights=weights, biases=biases, buffers=buffers)

    def _table(self, s: Sizes) -> int:
        """Swin's relative position bias table: one bias per head for each of (2w − 1)² offsets."""
        assert s.window is not None
        return (2 * s.window[0] - 1) * (2 * s.window[1] - 1) * s.heads

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        """The tensors as the layout's PyTorch module names and holds them."""
        s = sizes(a, inputs)
        qkv_bias, out_bias = self._biases(a)
        fused = s.q_width + 2 * s.kv_width
        shapes: dict[str, Shape]
        if a["layout"] == "separate":
            shapes = {"q.weight": (s.q_width, s.features), "k.weight": (s.kv_width, s.memory_features),
                      "v.weight": (s.kv_width, s.memory_features), "out.weight": (s.width, s.q_width)}
            if qkv_bias:
                shapes |= {"q.bias": (s.q_width,), "k.bias": (s.kv_width,), "v.bias": (s.kv_width,)}
        elif a["layout"] == "fused":
            shapes = {"qkv.weight": (fused, s.features), "proj.weight": (s.width, s.q_width)}
            shapes |= {"qkv.bias": (fused,)} if qkv_bias else {}
        elif a["layout"] == "mha":
            shapes = {"in_proj_weight": (fused, s.features), "out_proj.weight": (s.width, s.q_width)}
            shapes |= {"in_proj_bias": (fused,)} if qkv_bias else {}
        else:  # conv1d: Hugging Face's Conv1D holds its weight in × out
            shapes = {"c_attn.weight": (s.features, fused), "c_proj.weight": (s.q_width, s.width)}
            shapes |= {"c_attn.bias": (fused,)} if qkv_bias else {}
        if out_bias:
            shapes[{"separate": "out", "fused": "proj", "mha": "out_proj", "conv1d": "c_proj"}[a["layout"]]
                   + ".bias"] = (s.width,)
        if a["rel_pos"] and s.window:
            shapes["relative_position_bias_table"] = ((2 * s.window[0] - 1) * (2 * s.window[1] - 1), s.heads)
        return shapes

    # -- work ----------------------------------------------------------------------------
    def _projections(self, s: Sizes) -> int:
        return s.tokens * s.features * s.q_width + 2 * s.memory_tokens * s.memory_features * s.kv_width \
            + s.tokens * s.q_width * s.width

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """The projections (T·F·heads·hd for q, T'·F'·kv·hd for k and for v, T·heads·hd·dim for the
        output) + Q·Kᵀ and A·V on the full T×T (heads·T·T'·hd each; per window for Swin)."""
        s = sizes(a, inputs)
        return self._projections(s) + self.quadratic_macs(a, inputs, out)

    def quadratic_macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Q·Kᵀ and A·V: 2·heads·T·T'·head_dim (T' = the keys each query sees)."""
        s = sizes(a, inputs)
        return 2 * s.scores * s.head_dim

    def causal_macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """With a causal mask, only the lower triangle of Q·Kᵀ and A·V: query t sees keys 0..t,
        T·(T + 1)/2 pairs per head instead of T·T."""
        if not a["causal"]:
            return self.macs(a, inputs, out)
        s = sizes(a, inputs)
        return self._projections(s) + 2 * s.heads * s.head_dim * (s.tokens * (s.tokens + 1) // 2)

    def kv_cache(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """2·kv_heads·head_dim·T' (keys and values) where the layer keeps a cache (causal ones by default)."""
        cache = a["causal"] if a["cache"] is None else a["cache"]
        if not cache:
            return 0
        s = sizes(a, inputs)
        return 2 * s.kv_width * s.memory_tokens

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """Each projection as a linear layer (grad-input where its input needs one, grad-weight where
        the layer is trained); Q·Kᵀ and A·V one product per operand that needs a gradient: the query
        side (q) does where the query input or the weights do, the key/value side (k, v) where the
        memory input or the weights do, the attention weights always. The causal mask hides nothing
        from the count (FlopCounterMode's `bmm` runs over the full T×T)."""
        s = sizes(a, inputs)
        q_in = bool(input_grad[0])
        kv_in = bool(input_grad[1]) if s.memory is not None else q_in
        q_needs, kv_needs = q_in or weight_grad, kv_in or weight_grad
        product = s.scores * s.head_dim  # one of Q·Kᵀ and A·V
        q_proj, kv_proj = s.tokens * s.features * s.q_width, 2 * s.memory_tokens * s.memory_features * s.kv_width
        out_proj = s.tokens * s.q_width * s.width
        grad_input = (q_proj if q_in else 0) + (kv_proj if kv_in else 0) + out_proj \
            + product * (int(q_needs) + int(kv_needs)) + product * (1 + int(kv_needs))
        return Gradients(grad_input, self._projections(s) if weight_grad else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Measured (tests/reference/training_transformer_reference.json): where trained, the input(s)
        the projections read (Swin: the input cut into windows, a copy, unless one window covers the
        map) and the output projection's input T·q_width; always q (T·heads·hd), k and v
        (T'·kv_heads·hd each; heads·hd each once repeated for grouped-query attention), the attention
        weights (the softmax's output, which A·V keeps too: heads·T·T'), and with a rotary table the
        cos and sin each rotation computes (4·T·d)."""
        s = sizes(a, inputs)
        kept: list[Saved] = []
        if weight_grad:
            if s.window and prod(s.query[:2]) != prod(s.window):
                kept.append(Saved("own", elements=prod(s.query)))
            else:
                kept.append(saved_input(0))
            if s.memory is not None:
                kept.append(saved_input(1))
        kv = s.q_width if s.kv_heads != s.heads else s.kv_width
        kept += [Saved("own", elements=s.tokens * s.q_width), Saved("own", elements=s.memory_tokens * kv),
                 Saved("own", elements=s.memory_tokens * kv), Saved("own", elements=s.scores)]
        if s.rope:
            kept += [Saved("own", elements=s.rope[0] * s.rope[1])] * 4
        if weight_grad:
            kept.append(Saved("own", elements=s.tokens * s.q_width))
        return tuple(kept)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """Per score: the scaling (1 multiply), the softmax (1 exponential, 1 add, 1 division), a mask (causal
        or shifted windows) and the relative position bias (1 add each); the projections' bias adds; the
        rotation of each query and key element (2 multiplies, 1 add)."""
        s = sizes(a, inputs)
        qkv_bias, out_bias = self._biases(a)
        masked = a["causal"] or any(s.shift)
        per_score = OtherOps(adds=1 + int(masked) + int(a["rel_pos"]), multiplies=1, divisions=1, exponentials=1)
        biases = (s.tokens * s.q_width + 2 * s.memory_tokens * s.kv_width if qkv_bias else 0) + \
            (s.tokens * s.width if out_bias else 0)
        rotated = (s.tokens * s.heads + s.memory_tokens * s.kv_heads) * (s.rope[1] if s.rope else 0)
        n = s.scores
        return OtherOps(adds=per_score.adds * n + biases + rotated, multiplies=n + 2 * rotated, divisions=n,
                        exponentials=n)

    def parts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> tuple[Part, ...]:
        """`separate`: q, k, v and out, each a module; `conv1d`: GPT-2's c_attn and c_proj; `fused` and
        `mha` call no module (their projections are F.linear on the module's own weights)."""
        s = sizes(a, inputs)
        positions, memory = s.query[:-1], (s.memory or s.query)[:-1]
        if a["layout"] == "separate":
            return (Part("q", (*positions, s.q_width)), Part("k", (*memory, s.kv_width)),
                    Part("v", (*memory, s.kv_width)), Part("out", tuple(out)))
        if a["layout"] == "conv1d":
            return Part("c_attn", (*positions, s.q_width + 2 * s.kv_width)), Part("c_proj", tuple(out))
        return ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """Projections' weights and biases; MACs = projections + 2·heads·T·T'·hd."""
        s = sizes(a, inputs)
        c = self.counts(a, inputs, out)
        qkv_bias, out_bias = self._biases(a)
        f, fm, q, kv, w = s.features, s.memory_features, s.q_width, s.kv_width, s.width
        weights = f"{f}·{q} + 2·{fm}·{kv} + {q}·{w}"
        note = f"q {s.heads}×{s.head_dim}, k and v {s.kv_heads}×{s.head_dim}, out"
        if a["rel_pos"] and s.window:
            weights += f" + {2 * s.window[0] - 1}·{2 * s.window[1] - 1}·{s.heads}"
            note += ", relative position bias table"
        biases = " + ".join(([f"{q} + 2·{kv}"] if qkv_bias else []) + ([str(w)] if out_bias else [])) or "0"
        t, tm, keys = s.tokens, s.memory_tokens, s.keys
        macs = (f"{t}·{f}·{q} + 2·{tm}·{fm}·{kv} + {t}·{q}·{w} + 2·{s.heads}·{t}·{keys}·{s.head_dim}")
        formulas = [
            Formula("weights", weights, c.weights, note),
            Formula("biases", biases, c.biases),
            Formula("MACs", macs, self.macs(a, inputs, out),
                    "projections + Q·Kᵀ and A·V" + (" per window" if s.window else " on the full T×T")),
        ]
        if c.buffers:
            n = prod(s.window or ())
            formulas.append(Formula("buffers", f"{n}·{n}", c.buffers, "relative_position_index"))
        return formulas

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        """Every query sees every key: global; Swin's (shifted) windows are no sliding window: unknown."""
        return UNKNOWN if a["window"] is not None else GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import Attention as TorchAttention

        s = sizes(a, inputs)
        qkv_bias, out_bias = self._biases(a)
        return TorchAttention(
            a["layout"], s.features, s.memory_features, s.heads, s.kv_heads, s.head_dim, s.width,
            qkv_bias=qkv_bias, out_bias=out_bias, causal=a["causal"], cross=s.memory is not None,
            rotary=s.rope[1] if s.rope else 0, window=s.window, shift=s.shift, rel_pos=a["rel_pos"])
