"""[ort_fusions] RmsNormFusion fuses the scale Mul into SimplifiedLayerNormalization without checking the scale's shape: a scale that broadcasts X (X [1], scale [32]) gives a model ONNX Runtime fails to run

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnx
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('const_w0', torch.tensor([ 0.6194813  ,  0.076550975,  0.9369073  , -0.7525612  ,  0.5679297  , -1.1033018  , 0.36746606 ,  0.39895234 ,  0.9117415  , -1.1353492  , -0.64274174 ,  0.4517093  , -0.51242614 ,  0.18112993 , -1.623709   ,  0.92669696 ,  0.62931746 ,  0.35467425 , -0.21183406 , -0.22768763 , -0.7500203  , -1.4347874  , -0.49855536 , -0.6850181  , 0.1829614  ,  0.47179556 ,  1.4893395  , -0.18599333 ,  0.6269924  ,  2.388512   , 0.50216496 , -0.032850713], dtype=torch.float32))
    def forward(self, x0):
        n0 = torch.pow(x0, 2.0)
        n1 = torch.mean(n0, dim=[-1], keepdim=True, dtype=None)
        n2 = torch.add(n1, 1e-06, alpha=1)
        n3 = torch.rsqrt(n2)
        n4 = torch.mul(x0, n3)
        n6 = torch.mul(self.const_w0, n4)
        return n6,
model, args = Model().eval(), ( torch.tensor([0.38964018], dtype=torch.float32), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x0'])
    model_bytes = program.model_proto.SerializeToString()
    import onnxscript.rewriter.ort_fusions
    model_bytes = onnxscript.ir.to_proto(onnxscript.rewriter.ort_fusions.optimize_for_ort(onnxscript.ir.from_proto(onnx.load_from_string(model_bytes)))[0]).SerializeToString()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x0'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'InvalidArgument' and "Non-zero status code returned while running SimplifiedLayerNormalization node. Name:'node_Simplified" in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
