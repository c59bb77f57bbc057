"""Three TorchScript-exporter chains behind architecture-level failures that `convfuzz lift`
cannot reach (written by hand from the exporter source; see docs/models.md, Minimal chains).

    .venv/bin/python docs/models/torchscript_hand_repros.py
"""

import io
import warnings

import onnxruntime as ort
import torch

warnings.filterwarnings("ignore")


class RepeatInterleaveThenTranspose(torch.nn.Module):
    # symbolic_opset13.repeat_interleave: `dim = _maybe_get_scalar(dim); dim += rank` adds in
    # place to the tensor of the (pooled, shared) -2 constant, so the later transpose(-1, -2)
    # reads 1: transpose(x, -1, 1). glm_ocr_text, moonshine, canine.
    def forward(self, a, x):
        return torch.repeat_interleave(a, 2, dim=-2), torch.transpose(x, -1, -2)


class TensorSplitAtTracedIndex(torch.nn.Module):
    # symbolic_opset13.tensor_split: a one-element index list of a traced size takes the
    # "scalar tensor" (sections) branch, whose Tile gets 0-D repeats: ONNX Runtime refuses the
    # model at load. mamba, falcon_mamba (and glm5_next) split at seq_len - kept states.
    def forward(self, x):
        n = x.shape[1] // 4 * 4
        return torch.tensor_split(x, [n], dim=1)


class ScatterBoolValue(torch.nn.Module):
    # MoE routing (deepseek_v32, glm_moe_dsa, ...): scatter(dim, index, True). The tracer
    # records a Python bool where scatter.value wants a Scalar: alias_analysis INTERNAL ASSERT.
    def forward(self, x, idx):
        return torch.zeros_like(x, dtype=torch.bool).scatter(-1, idx, True)


def export(m, args):
    f = io.BytesIO()
    torch.onnx.export(m, args, f, dynamo=False, opset_version=17)
    return f.getvalue()


a, x = torch.randn(1, 2, 3), torch.randn(1, 2, 3, 4)
s = ort.InferenceSession(export(RepeatInterleaveThenTranspose(), (a, x)))
got = s.run(None, {s.get_inputs()[0].name: a.numpy(), s.get_inputs()[1].name: x.numpy()})[1]
print("repeat_interleave then transpose(-1, -2): torch",
      tuple(RepeatInterleaveThenTranspose()(a, x)[1].shape), "ONNX", got.shape)
try:
    ort.InferenceSession(export(TensorSplitAtTracedIndex(), (torch.randn(1, 8, 4),)))
    print("tensor_split: loads")
except Exception as e:
    print("tensor_split:", str(e)[:160])
try:
    export(ScatterBoolValue(), (torch.randn(2, 4), torch.tensor([[1], [2]])))
    print("scatter(..., True): exports")
except Exception as e:
    print("scatter(..., True):", str(e)[:160])
