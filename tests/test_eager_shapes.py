"""Workers infer shapes by running lowerings on CPU zeros first (fuzzer.ops.spec.eager_shapes):
it must never change what is generated, which the driver reproduces with meta alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzzer import ops
from fuzzer.generate import GenConfig
from fuzzer.ops import spec as spec_mod
from fuzzer.ops.spec import Meta, eager_shapes
from fuzzer.sampling import samplers

SAMPLERS = samplers()


@pytest.fixture
def fresh() -> Iterator[None]:
    spec_mod._MEMO.clear()
    yield
    eager_shapes(False)
    spec_mod._MEMO.clear()


def _draw(sampler: str, seeds: range, cfg: GenConfig, eager: bool) -> list[str]:
    spec_mod._MEMO.clear()  # each mode infers every node itself
    eager_shapes(eager)
    out = []
    for s in seeds:
        try:
            out.append(SAMPLERS[sampler](s, None, cfg).to_json())
        except Exception as e:  # a seed nothing fits must fail the same way in both modes
            out.append(f"{type(e).__name__}: {e}")
    return out


@pytest.mark.parametrize("sampler,cfg,n", [
    ("random", GenConfig(vocabulary="catalogue"), 400),  # every operator of the catalogue
    ("random", GenConfig(), 200),
    ("real", GenConfig(), 200),
    ("mutate", GenConfig(), 60),
])
def test_eager_first_shapes_generate_byte_identical_cases(fresh: None, sampler: str,
                                                          cfg: GenConfig, n: int) -> None:
    meta = _draw(sampler, range(n), cfg, eager=False)
    eager = _draw(sampler, range(n), cfg, eager=True)
    diff = [s for s, (a, b) in enumerate(zip(meta, eager, strict=True)) if a != b]
    assert not diff, f"seeds {diff[:5]} differ:\n{meta[diff[0]][:400]}\n{eager[diff[0]][:400]}"


def test_a_cpu_kernel_error_falls_back_to_meta(fresh: None) -> None:
    # Integer division of zeros raises on CPU; meta (the shape rule) accepts it.
    spec = ops.get("aten::floor_divide")
    m = Meta((3, 4), "int64")
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        spec._run_on([m, m], spec.defaults(), "cpu")
    eager_shapes(False)
    want = spec.infer([m, m], spec.defaults())
    spec_mod._MEMO.clear()
    eager_shapes(True)
    assert spec.infer([m, m], spec.defaults()) == want == [Meta((3, 4), "int64")]


def test_errors_both_modes_raise_are_still_raised(fresh: None) -> None:
    spec = ops.get("aten::matmul")
    eager_shapes(True)
    with pytest.raises(Exception, match=r"\S"):
        spec.infer([Meta((3, 4), "float32"), Meta((7, 5), "float32")], spec.defaults())


def test_the_forkserver_preload_loads_the_default_seeds_once_for_every_worker() -> None:
    import subprocess
    import sys

    from fuzzer.sandbox import PRELOAD

    assert "fuzzer.warm" in PRELOAD
    code = ("import fuzzer.warm\nfrom fuzzer import generate as g\n"
            "print(g._random_vocab.cache_info().currsize, g._markov.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "1"]
