"""[torchlib] aten_signbit of a 0-d tensor returns shape [1] (a rank-1 constant), the declared output is 0-d

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def forward(self, x2):
        n2 = torch.signbit(x2)
        return n2,
model, args = Model().eval(), ( torch.tensor(1.0830066, dtype=torch.float32), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x2'])
    model_bytes = program.model_proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x2'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if (list(actual[0].shape), str(actual[0].dtype)) == ([1], 'bool') != (list(expected[0].shape), str(expected[0].dtype).removeprefix('torch.')):
    sys.exit(print('REPRODUCED: output 0 is', actual[0].dtype, list(actual[0].shape), 'torch:', expected[0].dtype, list(expected[0].shape)) or 1)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
