"""[transformers optimizer] FusionSkipLayerNormalization crashes (IndexError) on a LayerNormalization without its optional bias, as the dynamo exporter writes LayerNorm(bias=False)

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('n1_weight', torch.tensor([0.9959722, 1.0563673, 1.0604268, 0.9780322], dtype=torch.float32))
    def forward(self, x):
        n0 = torch.add(x, x, alpha=1)
        n1 = F.layer_norm(n0, n0.shape[-1:], self.n1_weight, None, eps=1e-05)
        return n1,
torch.manual_seed(0)
model, args = Model().eval(), (torch.randn([4, 4, 4], dtype=torch.float32),)
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x'])
    model_bytes = program.model_proto.SerializeToString()
    from onnxruntime.transformers.optimizer import optimize_model
    model_bytes = optimize_model(onnx.load_from_string(model_bytes), model_type='bert', num_heads=0, hidden_size=0, opt_level=0).model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'IndexError' and 'list index out of range' in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
