"""tf2onnx: tf.one_hot of a negative index converts to OneHot, which counts it from the end (a 1 where TF gives an all-zero row)

Exit 1: reproduced; 0: fixed; 3: changed (another error or result). The check is convfuzz's oracle rule (fuzzer/compare.py), verbatim."""
import os
import sys
os.environ.update({'TF_ENABLE_ONEDNN_OPTS': '0', 'TF_CPP_MIN_LOG_LEVEL': '3', 'KERAS_BACKEND': 'tensorflow'})  # before TF loads: deterministic, quiet
import numpy as np
import onnxruntime as ort
import tensorflow as tf

class Model(tf.Module):
    def __init__(self, wide=False):
        super().__init__()
        w = (lambda a: a.astype(np.float64) if wide and a.dtype.kind == "f" else a)
        self.signature = [tf.TensorSpec([2], w(np.zeros(0, np.int64)).dtype, name='x1')]
        self.function = tf.function(self.forward, input_signature=self.signature, autograph=False)
    def forward(self, x1):
        n3 = tf.one_hot(tf.cast(x1, tf.int32), 8)
        return (n3,)
INPUTS = [np.array([ 3, -8], dtype=np.int64)]
model, args = Model(), [tf.constant(a) for a in INPUTS]
expected = [o.numpy() for o in model.forward(*args)]  # TF eager
try:
    import tf2onnx
    proto, _ = tf2onnx.convert.from_function(
        model.function, input_signature=model.signature, opset=17)
    model_bytes = proto.SerializeToString()
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x1'], (a.numpy() for a in args)))
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

base = Model(wide=True).forward(*(tf.constant(a.astype(np.float64) if a.dtype.kind == 'f' else a) for a in INPUTS))  # fp64
a, e, r = (np.asarray(t, dtype=np.float64) for t in (actual[0], np.asarray(expected[0]), np.asarray(base[0])))
if (bad := values_off(a, e, r, 0.0001, 1e-05)[0]).any():
    j = tuple(int(k) for k in np.argwhere(bad)[0])
    sys.exit(print(f'REPRODUCED: at {list(j)} TensorFlow gives {e[j]:.7g} (fp64 {r[j]:.7g}), ONNX Runtime {a[j]:.7g}') or 1)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
