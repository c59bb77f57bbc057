"""onnxruntime.transformers' optimizer (model_type bert) fuses no Attention into HF BERT exported
with transformers 5's default attn_implementation="sdpa"; the same model with "eager" gets 2.

Exit 1 while the fusion is missed, 0 once it fires. No hub: the model is built from a config."""
import io
import sys
import warnings

import onnx
import torch
from onnxruntime.transformers.optimizer import optimize_model
from transformers import BertConfig, BertModel

warnings.filterwarnings("ignore")


class Bert(torch.nn.Module):
    def __init__(self, impl: str):
        super().__init__()
        cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, vocab_size=100, attn_implementation=impl)
        self.m = BertModel(cfg).eval()

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


fused = {}
args = (torch.randint(0, 100, (1, 8)), torch.ones(1, 8, dtype=torch.long))
for impl in ("eager", "sdpa"):
    f = io.BytesIO()
    torch.onnx.export(Bert(impl), args, f, dynamo=False, opset_version=17,
                      input_names=["input_ids", "attention_mask"],
                      dynamic_axes={n: {0: "batch", 1: "seq"}
                                    for n in ("input_ids", "attention_mask")})
    opt = optimize_model(onnx.load_from_string(f.getvalue()), model_type="bert", num_heads=2,
                         hidden_size=32)
    fused[impl] = opt.get_fused_operator_statistics().get("Attention", 0)
    print(impl, "Attention nodes:", fused[impl])
sys.exit(1 if fused["eager"] and not fused["sdpa"] else 0)
