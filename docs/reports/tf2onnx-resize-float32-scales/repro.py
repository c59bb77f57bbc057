"""tf2onnx: tf.image.resize to a size that is not a whole multiple converts to Resize with float32 scales; by the ONNX spec's floor the output is one row short

Exit 1: reproduced; 0: fixed; 3: changed (another error or result)."""
import os
import sys
os.environ.update({'TF_ENABLE_ONEDNN_OPTS': '0', 'TF_CPP_MIN_LOG_LEVEL': '3', 'KERAS_BACKEND': 'tensorflow'})  # before TF loads: deterministic, quiet
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf

class Model(tf.Module):
    def __init__(self, wide=False):
        super().__init__()
        w = (lambda a: a.astype(np.float64) if wide and a.dtype.kind == "f" else a)
        self.signature = [tf.TensorSpec([4, 3, 4, 2], w(np.zeros(0, np.float32)).dtype, name='x0')]
        self.function = tf.function(self.forward, input_signature=self.signature, autograph=False)
    def forward(self, x0):
        n0 = tf.image.resize(x0, [5, 7], method='bilinear')
        return (n0,)
INPUTS = [np.array([[[[ 0.22194205 , 0.39045978 ], [-1.0513053 , 0.5886463 ], [ 0.5787896 , -0.17117056 ], [-0.5925411 , 1.1994046 ]], [[-1.2797233 , -1.3159335 ], [ 0.44532537 , 1.2273363 ], [ 1.531578 , -0.13114515 ], [-0.38178825 , -0.166026 ]], [[-2.1050742 , -0.3886216 ], [-0.9203006 , -0.41840008 ], [ 0.35987493 , -0.589426 ], [-0.36678723 , 1.1667658 ]]], [[[-0.5911551 , -1.4691525 ], [-0.24665739 , 0.27732474 ], [-1.8663336 , 0.86250687 ], [ 0.52162534 , -2.052114 ]], [[-0.39593935 , -1.4005185 ], [-0.28001666 , 1.0546668 ], [-0.31691036 , -0.7106158 ], [ 0.6445519 , -0.41449457 ]], [[-0.9741326 , -0.6850613 ], [ 2.2927272 , 0.9253313 ], [ 0.20570281 , 1.3733764 ], [-0.40592918 , -1.5278645 ]]], [[[ 1.083069 , -0.16018493 ], [ 0.56138164 , 1.9929534 ], [-1.891374 , -0.38461092 ], [-0.042658225, 0.61706436 ]], [[-0.25290704 , 0.18624806 ], [ 1.0688323 , -0.975935 ], [-0.27806914 , -1.4923202 ], [ 0.14995885 , 0.30755928 ]], [[-1.0864781 , -0.6630897 ], [-0.43307084 , -0.68175244 ], [ 0.90769684 , 0.9443245 ], [-0.4899751 , 1.4314818 ]]], [[[ 0.79487455 , 0.45215902 ], [-1.6221385 , 0.17254162 ], [ 0.43144214 , 0.5117738 ], [-0.48645067 , -0.54599136 ]], [[-0.57257926 , -0.50137746 ], [ 1.8551563 , -1.2702595 ], [-1.129807 , -0.16122372 ], [ 0.80954796 , 0.5176061 ]], [[ 1.0690547 , 0.5657574 ], [-3.3042107 , 0.021261713], [ 0.32195282 , 0.82772124 ], [-0.44662452 , -1.2551028 ]]]], dtype=np.float32)]
model, args = Model(), [tf.constant(a) for a in INPUTS]
expected = [o.numpy() for o in model.forward(*args)]  # TF eager
try:
    import tf2onnx
    proto, _ = tf2onnx.convert.from_function(
        model.function, input_signature=model.signature, opset=17)
    model_bytes = proto.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(model_bytes), full_check=True)
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feeds = dict(zip(['x0'], (a.numpy() for a in args)))
    actual = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})
except Exception as e:
    if type(e).__name__ == 'InferenceError' and 'Inferred shape and existing shape differ in dimension 1: (4) vs (5)' in str(e):
        sys.exit(print('REPRODUCED:', e) or 1)
    sys.exit(print('CHANGED:', type(e).__name__, e) or 3)
if any(list(np.shape(a)) != list(t.shape) for a, t in zip(actual, expected)):
    sys.exit(print('CHANGED: other output shapes') or 3)
print('FIXED: ONNX Runtime runs the model and this defect is gone')
