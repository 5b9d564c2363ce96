#!/usr/bin/env python3
"""What the peer counting tools print for transformers: tools/peer_reference.py's runs on ViT and GPT-2.

    PYTHONPATH= /work/peersvenv/bin/python tools/peer_transformer_reference.py \
        > tests/reference/peer_transformer_reference.json

The peers' venv has torchinfo, fvcore, ptflops and thop but no transformers: Hugging Face's
GPT-2 is imported from /work/refvenv's site-packages (appended to sys.path, so torch and the
tools stay the peers' own: torch 2.14.1 in both). Each model runs through
`peer_reference.analyse` exactly as the CNNs did (batch 1, `model.eval()`, grad enabled, CPU,
float32; the calls are peer_reference.TOOL_CALLS): each tool's total, per-module figures and
parameters. Models, at the sizes of tests/reference/training_transformer_reference.json:

- `vit_small`: torchvision VisionTransformer(image_size=32, patch_size=8, num_layers=2,
  num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10) on 1×3×32×32 — archcalc's
  `vit_b_16` with image=32, patch=8, dim=64, depth=2, heads=4, mlp=128, classes=10;
- `gpt2_small`: GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2,
  n_head=4), attn_implementation="eager"), its logits, on 16 token ids — archcalc's `gpt2` with
  seq=16, positions=16, vocab=100, dim=32, depth=2, heads=4;
- `probe_attention`: one of each transformer module a tool may have a rule for —
  nn.Embedding, nn.LayerNorm, nn.MultiheadAttention (need_weights=False: SDPA inside),
  nn.GELU, F.scaled_dot_product_attention, nn.Linear — on 8 token ids.

The formulas of peer_reference.py were written for CNNs; `formula_verified` says where they
also hold. archcalc's conventions (archcalc/passes/conventions.py) reproduce the totals.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

sys.path.append("/work/refvenv/lib/python3.11/site-packages")  # transformers only; torch stays the peers'
sys.path.insert(0, str(Path(__file__).parent))

import peer_reference as pr  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402


class GPT2Logits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                      attn_implementation="eager")
        self.model = transformers.GPT2LMHeadModel(cfg)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits


class BertPooler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=16, attn_implementation="eager")
        self.model = transformers.BertModel(cfg)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).pooler_output


class LlamaLogits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                                       rms_norm_eps=1e-6, attn_implementation="eager")
        self.model = transformers.LlamaForCausalLM(cfg)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits


class ProbeAttention(nn.Module):
    """Embedding(50, 32) → LayerNorm → MultiheadAttention(32, 4, batch_first, need_weights=False) + x →
    Linear(32, 96) split in q, k, v → F.scaled_dot_product_attention over 4 heads → GELU → Linear(32, 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        self.ln = nn.LayerNorm(32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.qkv = nn.Linear(32, 96)
        self.act = nn.GELU()
        self.head = nn.Linear(32, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.ln(self.emb(ids))
        x = x + self.mha(x, x, x, need_weights=False)[0]
        q, k, v = (t.view(1, -1, 4, 8).transpose(1, 2) for t in self.qkv(x).split(32, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, -1, 32)
        return self.head(self.act(a))


MODELS = {
    "vit_small": (lambda: VisionTransformer(32, 8, 2, 4, 64, 128, num_classes=10),
                  lambda: torch.randn(1, 3, 32, 32), (3, 32, 32)),
    "gpt2_small": (GPT2Logits, lambda: torch.randint(0, 100, (1, 16)), (16,)),
    "bert_small": (BertPooler, lambda: torch.randint(0, 100, (1, 16)), (16,)),
    "llama_small": (LlamaLogits, lambda: torch.randint(0, 100, (1, 16)), (16,)),
    "probe_attention": (ProbeAttention, lambda: torch.randint(0, 50, (1, 8)), (8,)),
}
NOTES = {
    "vit_small": "torchvision VisionTransformer(32, 8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, "
                 "num_classes=10); archcalc: vit_b_16 with image=32, patch=8, dim=64, depth=2, heads=4, mlp=128, "
                 "classes=10",
    "gpt2_small": "GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4), "
                  "attn_implementation='eager').logits on 16 ids; archcalc: gpt2 with seq=16, positions=16, "
                  "vocab=100, dim=32, depth=2, heads=4",
    "bert_small": "BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, "
                  "intermediate_size=128, max_position_embeddings=16), attn_implementation='eager').pooler_output on "
                  "16 ids; archcalc: bert-base with seq=16, vocab=100, dim=32, depth=2, heads=4, positions=16",
    "llama_small": "LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, "
                   "num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16, "
                   "rms_norm_eps=1e-6), attn_implementation='eager').logits on 16 ids; archcalc: llama with seq=16, "
                   "vocab=100, dim=32, depth=2, heads=4, kv_heads=2, hidden=64",
    "probe_attention": ProbeAttention.__doc__,
}


def _tolerant(verify):  # type: ignore[no-untyped-def]
    """peer_reference's CNN formulas assert per module; here a failed one only reads `false`."""
    def run(layers, got):  # type: ignore[no-untyped-def]
        try:
            return verify(layers, got)
        except (AssertionError, KeyError, TypeError, ValueError):
            return None
    return run


def main() -> None:
    torch.set_grad_enabled(True)
    for tool in ("torchinfo", "fvcore", "ptflops", "ptflops_aten", "thop"):
        setattr(pr, f"verify_{tool}", _tolerant(getattr(pr, f"verify_{tool}")))
    warnings.filterwarnings("ignore")
    pr.MODELS.update(MODELS)
    pr.MODEL_NOTES.update(NOTES)
    out = {"meta": {"command": "PYTHONPATH= /work/peersvenv/bin/python tools/peer_transformer_reference.py "
                               "> tests/reference/peer_transformer_reference.json",
                    "python": sys.version.split()[0], "torch": torch.__version__,
                    "transformers": transformers.__version__, "tool_calls": pr.TOOL_CALLS,
                    "tools": {k: pr.metadata.version(k) for k in ("torchinfo", "fvcore", "ptflops", "thop")}},
           "models": {}}
    for name in MODELS:
        out["models"][name] = pr.analyse(name)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
