"""[transformers optimizer] the bias SkipLayerNormalization fusion removes a bias Add whose output is a graph output: optimize_model writes a model ONNX Runtime refuses ('Graph output ... does not exist in the graph')

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
        self.register_buffer('n5_weight', torch.tensor([[-0.45361248  , -0.8589213   ,  0.38105282  ,  0.091216214 ], [-0.1932356   ,  0.2628053   ,  0.039031822 ,  0.94724494  ], [ 0.68361515  ,  0.14127234  ,  0.6249573   ,  0.0059278975], [-0.1757581   ,  0.28840637  ,  0.29746523  , -0.74258703  ]], dtype=torch.float32))
        self.register_buffer('n5_bias', torch.tensor([ 0.03820039 , -0.030080903, -0.07031725 ,  0.010720452], dtype=torch.float32))
        self.register_buffer('n8_weight', torch.tensor([1.20547   , 0.99641895, 1.050975  , 1.0470858 ], dtype=torch.float32))
        self.register_buffer('n8_bias', torch.tensor([ 0.08815161 ,  0.083733514, -0.14991717 , -0.055544533], dtype=torch.float32))
    def forward(self, x1):
        n5 = F.linear(x1, self.n5_weight, self.n5_bias)
        n7 = torch.add(n5, x1, alpha=1)
        n8 = F.layer_norm(n7, n7.shape[-1:], self.n8_weight, self.n8_bias, eps=1e-05)
        return n5, n8
torch.manual_seed(0)
model, args = Model().eval(), (torch.randn([4, 4, 4], dtype=torch.float32),)
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x1'])
    model_bytes = program.model_proto.SerializeToString()
    from onnxruntime.transformers.optimizer import optimize_model
    model_bytes = optimize_model(onnx.load_from_string(model_bytes), model_type='bert', num_heads=0, hidden_size=0, opt_level=0).model.SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x1'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'Fail' and '/onnxruntime_src/onnxruntime/core/graph/graph.cc:1617 void onnxruntime::Graph::InitializeStateFromMo' in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
