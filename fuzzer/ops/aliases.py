"""Names traced graphs use for catalogue operators (Python dunder methods, ATen aliases),
so mined n-grams map onto the catalogue instead of being lost to it."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    "aten::__and__": "aten::bitwise_and",
    "aten::__or__": "aten::bitwise_or",
    "aten::__xor__": "aten::bitwise_xor",
    "aten::multiply": "aten::mul",
    "aten::concat": "aten::cat",
    "aten::concatenate": "aten::cat",
    "aten::view_as": "aten::reshape_as",
    "aten::lift_fresh_copy": "aten::clone",
    "aten::new_zeros": "aten::zeros_like",
    "aten::empty_like": "aten::zeros_like",  # values unspecified upstream: zeros stand in
}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)
