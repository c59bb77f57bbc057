"""[torchlib] aten_squeeze_dim emits Squeeze on a dim whose size is not 1 (torch: no-op; ONNX Runtime refuses the model)

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def forward(self, x0):
        n0 = torch.squeeze(x0, dim=1)
        return n0,
model, args = Model().eval(), ( torch.tensor([[ 1.0533103 , -0.587405 ], [-0.24717323, 0.27602008], [-0.7555378 , 0.3910389 ], [ 1.5800709 , 0.07462661]], dtype=torch.float32), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x0'])
    model_bytes = program.model_proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x0'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'Fail' and 'Dimension of input 1 must be 1 instead of 2' in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
