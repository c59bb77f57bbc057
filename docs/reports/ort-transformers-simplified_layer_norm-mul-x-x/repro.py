"""[transformers optimizer] FusionSimplifiedLayerNormalization crashes on an RMSNorm written with x * x: it indexes the Mul NodeProto instead of its inputs

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import io
import sys
import numpy as np
import onnx
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def forward(self, x):
        n1 = torch.mul(x, x)
        n2 = torch.mean(n1, dim=[-1], keepdim=False, dtype=None)
        n3 = torch.add(n2, 1.0)
        n4 = torch.rsqrt(n3)
        n5 = torch.mul(x, n4)
        return n5,
model, args = Model().eval(), ( torch.tensor([ 0.7991019 , -0.92290753, -0.26760155, -0.37583426], dtype=torch.float32), )
expected = model(*args)
try:
    f = io.BytesIO()  # the TorchScript exporter (dynamo=False, deprecated)
    torch.onnx.export(model, args, f, dynamo=False, opset_version=17, input_names=['x'])
    model_bytes = f.getvalue()
    from onnxruntime.transformers.optimizer import optimize_model
    model_bytes = optimize_model(onnx.load_from_string(model_bytes), model_type='bert', num_heads=0, hidden_size=0, opt_level=0).model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'TypeError' and "'NodeProto' object is not subscriptable" in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
