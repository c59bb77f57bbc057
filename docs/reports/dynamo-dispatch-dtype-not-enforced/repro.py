"""[ONNX] dynamo exporter emits a torchlib function at input types it does not declare (invalid model instead of an export error)

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import sys
import numpy as np
import onnxruntime as ort
import torch

class Model(torch.nn.Module):
    def forward(self, x3):
        n3 = torch.isnan(x3)
        return n3,
model, args = Model().eval(), ( torch.tensor([-6, 8, -6, 6], dtype=torch.int64), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x3'])
    model_bytes = program.model_proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x3'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'InvalidGraph' and "This is an invalid model. Type Error: Type 'tensor(int64)'" in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    if isinstance(e, torch.onnx.errors.OnnxExporterError):
        sys.exit(print('FIXED: the exporter refuses the input types:', e) or 0)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
