"""The repro's tensor literals: source that evaluates back to the same tensor."""

from __future__ import annotations

import pytest
import torch

from fuzzer.codegen import tensor_literal


@pytest.mark.parametrize("t", [torch.zeros(1, 8, 8, 0), torch.zeros(0, dtype=torch.int64),
                               torch.tensor([[1.5, float("nan")], [-0.0, float("-inf")]]),
                               torch.tensor(3, dtype=torch.int8),
                               torch.tensor([True, False])])
def test_a_literal_evaluates_to_the_same_tensor(t: torch.Tensor) -> None:
    # An empty tensor used to print as torch.tensor([]): shape [0], not [1, 8, 8, 0].
    back = eval(tensor_literal(t), {"torch": torch})
    assert back.shape == t.shape and back.dtype == t.dtype
    assert torch.equal(back.nan_to_num(), t.nan_to_num())
