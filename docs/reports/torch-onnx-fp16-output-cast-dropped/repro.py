"""[ONNX] abs/sum/prod/cumsum of a float16 tensor exports a float32 graph output: the FX graph's cast back to float16 is dropped

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def forward(self, x1):
        n1 = torch.abs(x1)
        return n1,
model, args = Model().eval(), ( torch.tensor([0.921 , 1.029 , 0.276 , 0.2598], dtype=torch.float16), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x1'])
    model_bytes = program.model_proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x1'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if (list(actual[0].shape), str(actual[0].dtype)) == ([4], 'float32') != (list(expected[0].shape), str(expected[0].dtype).removeprefix('torch.')):
    sys.exit(print('REPRODUCED: output 0 is', actual[0].dtype, list(actual[0].shape), 'torch:', expected[0].dtype, list(expected[0].shape)) or 1)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
