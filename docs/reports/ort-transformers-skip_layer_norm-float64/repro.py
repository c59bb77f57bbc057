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
model, args = Model().eval(), ( torch.tensor([[[-0.2831920102414734 , -1.3278696679014947 , 0.44477173094486855 , 0.3552381046834386 ], [-0.7993647269146166 , 0.764604914632316 , 2.1927719758362336 , 1.045819501534049 ], [ 1.1288781521350761 , -0.46455588202687714 , 1.1565479553592197 , -1.08177413181944 ], [ 0.5862245332273538 , 1.2055270450296967 , 1.856126130200038 , 1.3306609866277386 ]], [[-0.17149132637632714 , -1.2589928105873667 , -0.0044920954452961175, 0.8729483127888533 ], [-0.407644041728388 , -2.1810409500999857 , -0.2669072698657876 , -0.9976858343132887 ], [ 1.0485459999142441 , 0.6740518720381583 , -0.46478912226549135 , 1.3315512487989751 ], [ 0.5303202630674918 , 0.21650410405044535 , 1.2352001421356287 , 0.3436899025392562 ]], [[-0.39926492548142767 , -0.16956174614324115 , -0.21254722481217495 , -0.8352924408118498 ], [-2.001558114260489 , -0.45002798127396504 , 0.9325690585506758 , -0.006828791869873642 ], [ 0.13822735466792396 , -0.19138494279815826 , 1.0027383185221472 , 1.1627159070051776 ], [-0.8700561025178768 , 1.1719236409451415 , -0.5794895102977127 , -0.053976041645535155 ]], [[-0.5881405210351218 , -1.3368120795940288 , 2.1166202882508958 , -1.3404834021742051 ], [-0.1898046380493865 , 1.6639508102675042 , -0.1583558695372939 , 0.3539762336754329 ], [-0.41219577068517876 , 0.09552170427006505 , 1.5723667012285496 , 0.6089993278970625 ], [ 0.43537127349531834 , -0.8024332878801349 , 1.271730141439534 , 0.11251773080473575 ]]], dtype=torch.float64), )
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
