"""[ort_fusions] the MultiHeadAttention fusion replaces Reshape(Transpose(SDPA)) without reading the Reshape's target shape: an attention output viewed to 2D (GPT-2's Conv1D) comes back 3D

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

class Model(torch.nn.Module):
    def forward(self, x10, x12, x13):
        n22 = x10.view([1, 8, -1, 16])
        n23 = torch.transpose(n22, 1, 2)
        n24 = F.scaled_dot_product_attention(n23, x12, x12, attn_mask=x13, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False)
        n26 = torch.transpose(n24, 1, 2)
        n27 = torch.reshape(n26, [-1])
        n28 = n27.view([-1, 32])
        return n28,
torch.manual_seed(0)
model, args = Model().eval(), (torch.randn([1, 8, 32], dtype=torch.float32), torch.randn([1, 2, 8, 16], dtype=torch.float32), torch.randn([1, 1, 1, 8], dtype=torch.float32),)
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x10', 'x12', 'x13'])
    model_bytes = program.model_proto.SerializeToString()
    import onnxscript.rewriter.ort_fusions
    model_bytes = onnxscript.ir.to_proto(onnxscript.rewriter.ort_fusions.optimize_for_ort(onnxscript.ir.from_proto(onnx.load_from_string(model_bytes)))[0]).SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x10', 'x12', 'x13'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if (list(actual[0].shape), str(actual[0].dtype)) == ([1, 8, 32], 'float32') != (list(expected[0].shape), str(expected[0].dtype).removeprefix('torch.')):
    sys.exit(print('REPRODUCED: output 0 is', actual[0].dtype, list(actual[0].shape), 'torch:', expected[0].dtype, list(expected[0].shape)) or 1)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
