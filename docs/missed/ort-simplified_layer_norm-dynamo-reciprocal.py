"""ONNX Runtime's SimplifiedLayerNormFusion fuses an RMSNorm exported by the TorchScript
exporter (rsqrt as Div(1, Sqrt), which DivMulFusion turns into Div(x, Sqrt)) but not the same
module exported by the default dynamo exporter (rsqrt as Reciprocal(Sqrt), then Mul).
Exit 1 while the dynamo export is missed, 0 once it fuses."""
import sys

import onnx
import onnxruntime as ort
import torch


class RMSNorm(torch.nn.Module):  # LlamaRMSNorm, as transformers writes it
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(64))
    def forward(self, x):
        v = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(v + 1e-6))

x = torch.randn(2, 8, 64)
fused = {}
for dynamo in (False, True):
    torch.onnx.export(RMSNorm(), (x,), "/tmp/rms.onnx", dynamo=dynamo,
                      opset_version=None if dynamo else 17)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = "/tmp/rms_opt.onnx"
    ort.InferenceSession("/tmp/rms.onnx", so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load("/tmp/rms_opt.onnx").graph.node]
    fused[dynamo] = ops.count("SimplifiedLayerNormalization")
    print("dynamo" if dynamo else "torchscript", ops)
sys.exit(1 if fused[False] and not fused[True] else 0)
