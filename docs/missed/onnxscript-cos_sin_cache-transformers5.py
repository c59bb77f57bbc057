"""onnxscript's cos_sin_cache fusion matches transformers 4's rotary angles
(inv_freq @ position_ids) but not transformers 5's (position_ids[..., None] * inv_freq):
RotaryEmbedding keeps no cos/sin cache. Exit 1 while the fusion is missed, 0 once it fires."""
import sys

import torch
from onnxscript.rewriter.ort_fusions import optimize_for_ort


def rotate_half(x):
    return torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), dim=-1)

class Rope(torch.nn.Module):
    def __init__(self, matmul: bool):
        super().__init__()
        self.matmul = matmul
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16)))
    def forward(self, q, position_ids):  # q [B, H, S, D]
        if self.matmul:  # transformers 4.x
            inv = self.inv_freq[None, :, None].expand(1, -1, 1)
            freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        else:            # transformers 5.x (LlamaRotaryEmbedding.forward)
            freqs = position_ids[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]
        return q * cos + rotate_half(q) * sin

args = (torch.randn(1, 2, 8, 16), torch.arange(8)[None])
counts = {}
for matmul in (True, False):
    model = torch.onnx.export(Rope(matmul), args, dynamo=True).model
    _, stats = optimize_for_ort(model)
    counts[matmul] = (stats.get("rotary_embedding"), stats.get("cos_sin_cache"))
    print("transformers 4 (MatMul)" if matmul else "transformers 5 (Mul)   ",
          "rotary_embedding, cos_sin_cache:", counts[matmul])
sys.exit(1 if counts[True][1] and not counts[False][1] else 0)
