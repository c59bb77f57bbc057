"""[transformers optimizer] FusionSkipLayerNormalization fuses Add + LayerNormalization in float64 into SkipLayerNormalization, which takes no double (invalid model)

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
        self.register_buffer('n1_weight', torch.tensor([1.0311794805446701, 1.0135028360938843, 0.9869745540669187, 1.0803996718048654], dtype=torch.float64))
        self.register_buffer('n1_bias', torch.tensor([ 0.07946852365423805, -0.2556514709675425 ,  0.19869226139768148,  0.1271782077457587 ], dtype=torch.float64))
    def forward(self, x0):
        n0 = torch.add(x0, x0, alpha=1)
        n1 = F.layer_norm(n0, n0.shape[-1:], self.n1_weight, self.n1_bias, eps=1e-05)
        return n1,
torch.manual_seed(0)
model, args = Model().eval(), (torch.randn([4, 4, 4], dtype=torch.float64),)
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x0'])
    model_bytes = program.model_proto.SerializeToString()
    from onnxruntime.transformers.optimizer import optimize_model
    model_bytes = optimize_model(onnx.load_from_string(model_bytes), model_type='bert', num_heads=0, hidden_size=0, opt_level=0).model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x0'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'InvalidGraph' and "This is an invalid model. Type Error: Type 'tensor(double)'" in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
