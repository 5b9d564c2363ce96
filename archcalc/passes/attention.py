"""What attention adds to the counts: the MACs that grow with T², the causal-aware MACs and the
KV cache, per node (docs/conventions.md, "Attention").

- `quadratic_macs`: Q·Kᵀ and A·V, `2·heads·T·T'·head_dim` per attention layer (per window for
  Swin); every other MAC of a sequence model grows linearly with T (the rest: `macs −
  quadratic_macs`).
- `causal_macs`: the MACs with a causal mask's hidden upper triangle left out — only T·(T + 1)/2
  query–key pairs per head. FlopCounterMode never discounts a mask: this is a figure of its own,
  and `macs` (FLOPs = 2 × MACs) stays what it reports.
- `kv_cache`: the elements per sample a decoder keeps between generation steps, `2·kv_heads·
  head_dim·T` per attention layer that caches (causal ones, by default); bytes = elements ×
  batch × the dtype's bytes.

All per sample, like MACs; the per-batch figures are these × the batch (`Analysis.batch`).
"""

from __future__ import annotations

from archcalc.graph import LayerGraph
from archcalc.passes.counting import per_node
from archcalc.passes.memory import MemoryOptions
from archcalc.records import record


@record
class AttentionFigures:
    """Per node (by id) and in total: T² MACs, causal-aware MACs, KV-cache elements and bytes."""

    quadratic_macs: tuple[int, ...]
    causal_macs: tuple[int, ...]
    kv_cache: tuple[int, ...]  # elements per sample
    kv_cache_bytes: tuple[int, ...]  # × batch × bytes per element

    @property
    def total_quadratic_macs(self) -> int:
        return sum(self.quadratic_macs)

    @property
    def total_causal_macs(self) -> int:
        return sum(self.causal_macs)

    @property
    def total_kv_cache(self) -> int:
        return sum(self.kv_cache)

    @property
    def total_kv_cache_bytes(self) -> int:
        return sum(self.kv_cache_bytes)

    def cached(self) -> list[int]:
        """The nodes that keep a KV cache, in order."""
        return [i for i, n in enumerate(self.kv_cache) if n]


def attention_figures(graph: LayerGraph, options: MemoryOptions) -> AttentionFigures:
    quadratic = per_node(graph, lambda n: n.layer.quadratic_macs(n.args, n.in_shapes, n.shape))
    causal = per_node(graph, lambda n: n.layer.causal_macs(n.args, n.in_shapes, n.shape))
    cache = per_node(graph, lambda n: n.layer.kv_cache(n.args, n.in_shapes, n.shape))
    per = options.batch * options.bytes_per_element
    cache_bytes = per_node(graph, lambda n: cache[n.id] * per)  # per distinct layer, from its cache above
    return AttentionFigures(quadratic, causal, cache, cache_bytes)
