"""Every catalogue operator as a single-operator Case through both exporters: every verdict
must be classified (an Outcome; a stage and a symptom unless it passed).

The default run takes one probe per operator (a dtype rotating through the operator's dtypes,
arguments drawn with a high non-default share) through TorchScript, and every third of them
through the dynamo exporter (~1.5 s an export): about 2 minutes on 2 cores. The exhaustive
sweep (every operator x dtype x argument value, `python -m fuzzer.ops.probe`) is marked slow;
its last result is docs/ops-sweep.md.
"""

from __future__ import annotations

import pytest

from fuzzer.ops import probe
from fuzzer.sandbox import Sandbox
from fuzzer.verdict import Outcome, Verdict

SAMPLE = list(probe.sample(seed=0))
DYNAMO_SAMPLE = SAMPLE[::3]


def _assert_classified(v: Verdict, label: str) -> None:
    assert isinstance(v.outcome, Outcome), label
    if v.outcome != Outcome.PASS:
        assert v.stage is not None and v.symptom is not None, (label, v.to_dict())
    if v.outcome == Outcome.UNSUPPORTED:
        assert v.symptom.value == "unsupported", label


def _run(sandbox: Sandbox, p: probe.Probe, target: str) -> None:
    case = probe.build(p)
    if case is None:
        pytest.skip(f"{p.label}: no input fits these attributes")
    v = sandbox.run(case, target)
    _assert_classified(v, f"{p.label} on {target}")


@pytest.mark.parametrize("p", SAMPLE, ids=lambda p: p.op)
def test_torchscript_sample(sandbox: Sandbox, p: probe.Probe) -> None:
    _run(sandbox, p, probe.TS)


@pytest.mark.parametrize("p", DYNAMO_SAMPLE, ids=lambda p: p.op)
def test_dynamo_sample(sandbox: Sandbox, p: probe.Probe) -> None:
    _run(sandbox, p, probe.DYNAMO)


def test_sample_builds() -> None:
    """The sampled probes nearly all make Cases: the catalogue's domains fit its ops."""
    built = sum(probe.build(p) is not None for p in SAMPLE)
    assert built >= 0.95 * len(SAMPLE), built


@pytest.mark.slow
def test_exhaustive_sweep() -> None:
    """Every operator x dtype x argument value (about an hour on 2 cores)."""
    results = probe.run_sweep(list(probe.exhaustive()))
    for p, _case, verdicts in results:
        for v in verdicts:
            _assert_classified(v, f"{p.label} on {v.target}")
