"""ONNX graph passes as components. Each records the model after every step it runs, so
blame can name the one step that changed behaviour. Optional projects (onnxoptimizer,
onnxsim, onnxslim) register only when importable."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import onnx

from fuzzer.targets.quiet import quiet
from fuzzer.targets.registry import Artifact, Component, StageFailure, component
from fuzzer.verdict import Stage

Step = Callable[[onnx.ModelProto], onnx.ModelProto]


def pipeline(name: str, family: str, steps: list[tuple[str, Step]], code: str = ""
             ) -> Component:
    """A pass made of named steps, applied in order; each step's model joins the history."""
    def run(art: Artifact) -> None:
        proto = onnx.load_from_string(art.model)
        for step, fn in steps:
            try:
                with quiet():
                    proto = fn(proto)
                data = proto.SerializeToString()
            except Exception as e:
                raise StageFailure(Stage.GRAPH_OPTIMIZATION, f"{name}:{step}: "
                                   f"{type(e).__name__}: {e}") from e
            art.set_model(name, step, data)
    # `code`: the pass as repro source, rewriting `proto` (an onnx.ModelProto)
    snippet = (lambda case: "proto = onnx.load_from_string(model_bytes)\n" + code
               + "model_bytes = proto.SerializeToString()\n") if code else None
    return Component("pass", name, run, family, {"steps": [s for s, _ in steps]},
                     snippet=snippet)


@component("pass", r"onnxscript-opt", ("onnxscript-opt",),
           "onnxscript.optimizer.optimize: constant folding and rewrite rules, standalone")
def onnxscript_opt() -> Component:
    # optional extra [passes]: only this pass needs it
    import onnxscript.optimizer

    return pipeline("onnxscript-opt", "onnxscript",
                    [("optimize", lambda m: onnxscript.optimizer.optimize(m))],
                    "import onnxscript.optimizer\n\n"
                    "proto = onnxscript.optimizer.optimize(proto)\n")


if importlib.util.find_spec("onnxoptimizer") is not None:
    @component("pass", r"onnxoptimizer(?:-(?P<only>[a-z_]+))?",
               ("onnxoptimizer", "onnxoptimizer-fuse_bn_into_conv"),
               "onnxoptimizer's fuse-and-eliminate passes one at a time (or just one)")
    def onnx_optimizer(only: str | None = None) -> Component:
        # optional extra [passes]: only this pass needs it
        import onnxoptimizer

        names = onnxoptimizer.get_fuse_and_elimination_passes()
        if only is not None:
            if only not in onnxoptimizer.get_available_passes():
                raise ValueError(f"onnxoptimizer has no pass {only!r}")
            names = [only]

        def one(p: str) -> Step:
            return lambda m: onnxoptimizer.optimize(m, [p])
        return pipeline("onnxoptimizer" + (f"-{only}" if only else ""), "onnxoptimizer",
                        [(p, one(p)) for p in names],
                        f"import onnxoptimizer\n\nfor name in {names!r}:\n"
                        "    proto = onnxoptimizer.optimize(proto, [name])\n")

if importlib.util.find_spec("onnxsim") is not None:
    @component("pass", r"onnxsim", ("onnxsim",), "onnx-simplifier (onnxsim.simplify)")
    def onnx_sim() -> Component:
        # optional extra [passes]: only this pass needs it
        import onnxsim

        def simplify(m: onnx.ModelProto) -> onnx.ModelProto:
            out, _ = onnxsim.simplify(m, check_n=0)
            return out
        return pipeline("onnxsim", "onnxsim", [("simplify", simplify)],
                        "import onnxsim\n\nproto, _ = onnxsim.simplify(proto, check_n=0)\n")

if importlib.util.find_spec("onnxslim") is not None:
    @component("pass", r"onnxslim", ("onnxslim",), "onnxslim.slim")
    def onnx_slim() -> Component:
        # optional extra [passes]: only this pass needs it
        import onnxslim

        return pipeline("onnxslim", "onnxslim", [("slim", lambda m: onnxslim.slim(m))],
                        "import onnxslim\n\nproto = onnxslim.slim(proto)\n")


def _rewrite(src: str, dst: str) -> Step:
    def fn(m: onnx.ModelProto) -> onnx.ModelProto:
        out = onnx.ModelProto()
        out.CopyFrom(m)
        for node in out.graph.node:
            if node.op_type == src:
                node.op_type = dst
        return out
    return fn


@component("pass", r"fault-rewrite-(?P<src>[A-Za-z]+)-(?P<dst>[A-Za-z]+)",
           ("fault-rewrite-Relu-Abs",),
           "a planted wrong pass between two identity steps: rewrites op SRC into DST",
           fault=True)
def fault_rewrite(src: str, dst: str) -> Component:
    def identity(m: onnx.ModelProto) -> onnx.ModelProto:
        return m
    return pipeline(f"fault-rewrite-{src}-{dst}", "test",
                    [("identity-before", identity), (f"rewrite-{src}-{dst}", _rewrite(src, dst)),
                     ("identity-after", identity)])



