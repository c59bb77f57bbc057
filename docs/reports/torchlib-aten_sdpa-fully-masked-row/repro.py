"""[torchlib] scaled_dot_product_attention with a bool mask: a fully masked query row gives the mean of V instead of torch's 0 (the mask is filled with dtype.min, not -inf, so the NaN guard never fires)

Exit 1: reproduced; 0: fixed; 3: changed (another error or result). The check is convfuzz's oracle rule (fuzzer/compare.py), verbatim."""
import sys
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

class Model(torch.nn.Module):
    def forward(self, x8, x10):
        n95 = F.scaled_dot_product_attention(x10, x10, x10, attn_mask=x8, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False)
        return n95,
model, args = Model().eval(), ( torch.tensor([[False]], dtype=torch.bool), torch.tensor([[[[-0.4806363]]]], dtype=torch.float32), )
expected = model(*args)
try:
    program = torch.onnx.export(model, args, dynamo=True, optimize=True, input_names=['x8', 'x10'])
    model_bytes = program.model_proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x8', 'x10'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
def values_off(a, e, r, rtol, atol):
    ok = np.isfinite(a) & np.isfinite(e) & np.isfinite(r)
    err_a = np.where(ok, np.abs(a - r), 0.0)
    err_e = np.where(ok, np.abs(e - r), 0.0)
    scale = max(1.0, float(np.abs(np.where(ok, r, 0.0)).max(initial=0.0)))
    allowed = 2.0 * err_e + atol * scale + rtol * np.abs(np.where(ok, r, 0.0))
    return (ok & (err_a > allowed), err_a, err_e)

base = Model().double()(*(x.double() if x.is_floating_point() else x for x in args))  # fp64
a, e, r = (np.asarray(t, dtype=np.float64) for t in (actual[0], expected[0].detach(), base[0].detach()))
if (bad := values_off(a, e, r, 0.0001, 1e-05)[0]).any():
    j = tuple(int(k) for k in np.argwhere(bad)[0])
    sys.exit(print(f'REPRODUCED: at {list(j)} torch gives {e[j]:.7g} (fp64 {r[j]:.7g}), ONNX Runtime {a[j]:.7g}') or 1)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
