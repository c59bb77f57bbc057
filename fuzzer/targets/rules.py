"""onnxscript's rewrite rules by name: naming them, counting their matches, and re-running the
dynamo exporter's optimizer with some of them off (blame's re-run of that step)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import onnx

from fuzzer.targets.quiet import quiet


def rule_names(rules: Sequence[Any]) -> list[str]:
    """A name per rule: its own, else `<module>:<first op of its pattern>` (numbered when
    several rules of a module share it)."""
    out: list[str] = []
    for r in rules:
        name = getattr(r, "name", None)
        if not name:
            fn = getattr(getattr(r, "_replacement_pattern", None), "_function", None)
            module = (getattr(fn, "__module__", "") or "rule").rsplit(".", 1)[-1].strip("_")
            nodes = getattr(getattr(r, "_target_pattern", None), "_nodes", None) or []
            name = f"{module}:{nodes[0].op_type}" if nodes else module
        base, k = name, 2
        while name in out:
            name, k = f"{base}#{k}", k + 1
        out.append(name)
    return out


CRASHED = "<crashed>"  # the key under which Counted notes the rule that raised


class Counted:
    """A rewrite rule that counts its successful matches (onnxscript reports only a total)
    and notes its name when it raises (onnx_ir's PassError names no rule)."""

    def __init__(self, rule: Any, name: str, counts: dict[str, Any]) -> None:
        self._rule, self._name, self._counts = rule, name, counts

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._rule, attr)

    def try_rewrite(self, *args: Any, **kw: Any) -> Any:
        try:
            delta = self._rule.try_rewrite(*args, **kw)
        except Exception:
            self._counts.setdefault(CRASHED, self._name)
            raise
        if delta is not None:
            self._counts[self._name] = self._counts.get(self._name, 0) + 1
        return delta


def default_rules() -> Sequence[Any]:
    # on use: the rewriter package loads only when its rules are asked for
    from onnxscript import rewriter

    return rewriter._DEFAULT_REWRITE_RULES  # what rewrite(model) applies when given no rules


@contextlib.contextmanager
def _defaults(rules: Sequence[Any]) -> Iterator[None]:
    """onnxscript's default rule list swapped for `rules` while open, put back whatever
    happens: the dynamo exporter's optimizer reads the module's list when it runs (one model
    at a time in a worker)."""
    # on use: the rewriter package loads only when its rules are asked for
    from onnxscript import rewriter

    saved = rewriter._DEFAULT_REWRITE_RULES
    rewriter._DEFAULT_REWRITE_RULES = tuple(rules) or (_never(),)  # RewritePass refuses none
    try:
        yield
    finally:
        rewriter._DEFAULT_REWRITE_RULES = saved


def counting_defaults(counts: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """While open, onnxscript's default rules count their matches into `counts`: what the
    dynamo exporter's optimizer fired."""
    rules = tuple(default_rules())
    return _defaults(Counted(r, n, counts) for r, n in zip(rules, rule_names(rules),
                                                             strict=True))


def optimizer_without(model: bytes, off: frozenset[str]) -> bytes:
    """The dynamo exporter's optimizer (`onnxscript.optimizer.optimize`, what
    `ONNXProgram.optimize` runs) on `model` with the named default rules off, and constant
    folding off when `constant_folding` is named: blame's re-run of that step."""
    # on use: the rewriter package loads only when its rules are asked for
    import onnx_ir as ir
    from onnxscript.optimizer import _optimizer

    rules = tuple(default_rules())
    kept = [r for r, n in zip(rules, rule_names(rules), strict=True) if n not in off]
    ir_model = ir.serde.deserialize_model(onnx.load_from_string(model))
    with _defaults(kept), quiet():
        _optimizer.optimize_ir(ir_model, should_fold=(lambda node: False)
                               if "constant_folding" in off else (lambda node: None))
    return ir.serde.serialize_model(ir_model).SerializeToString()


def _never() -> Any:
    """A rule that matches nothing (an op no model has)."""
    # on use: the rewriter package loads only when its rules are asked for
    from onnxscript.rewriter import pattern

    return pattern.RewriteRule(lambda op, x: op.ConvfuzzNoSuchOp(x), lambda op, x: op.Identity(x),
                               name="never")


def optimizer_switches(fired: Sequence[str] | None = None) -> list[str]:
    """The names blame may switch off in the dynamo exporter's optimizer: constant folding and
    the rules that fired, or every default rule when what fired is not known."""
    return ["constant_folding",
            *(sorted(fired) if fired is not None else rule_names(tuple(default_rules())))]
