"""What a sampler is and where samplers are found: seed (+ vocabulary, config) -> Case, in a
registry filled by the `@sampler` decorator. The modules that define samplers import this one,
never each other; `samplers()` imports the built-in ones by name (a plugin list, so the
registry does not import its members back)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fuzzer.case import Case


@dataclass(frozen=True)
class GenConfig:
    min_len: int = 1
    max_len: int = 6
    nondefault: float = 0.3  # share of keyword arguments drawn away from their default
    float32_share: float = 0.7  # the rest of the inputs take another dtype the op accepts
    tries: int = 12  # attribute draws per op before another op is tried
    dynamic: float = 0.0  # share of Cases whose inputs' dim 0 is exported as dynamic
    seeds: str = ""  # mined seeds directory for the real arm ("" = the repo's seeds/)
    # The random arm's vocabulary: "mined" (the real arm's, the fair control) or "catalogue".
    vocabulary: str = "mined"
    near_miss: float = 0.0  # motif sampler: share of Cases with one precondition changed


class GenerationError(RuntimeError):
    """No operator in the vocabulary fits (e.g. an empty or inconsistent vocabulary)."""


Sampler = Callable[[int, Sequence[str] | None, GenConfig | None], Case]

# The modules holding the built-in samplers; a new sampler module adds its name here.
BUILTIN = ("fuzzer.generate", "fuzzer.mutate", "fuzzer.motif_sampler", "fuzzer.splice",
           "fuzzer.arch_sampler")
_REGISTRY: dict[str, Sampler] = {}


def sampler(name: str) -> Callable[[Sampler], Sampler]:
    """Register a sampler under `name` (the `--source` of `convfuzz fuzz`)."""
    def deco(fn: Sampler) -> Sampler:
        _REGISTRY[name] = fn
        return fn
    return deco


def samplers() -> dict[str, Sampler]:
    """Every registered sampler by name, the built-in ones loaded first."""
    for module in BUILTIN:
        importlib.import_module(module)  # registers its @sampler functions (cached after once)
    return _REGISTRY


def draw(name: str, seed: int, vocab: Sequence[str] | None = None,
         cfg: GenConfig | None = None) -> Case:
    """The Case `seed` of sampler `name`."""
    found = samplers()
    if name not in found:
        raise GenerationError(f"unknown source {name!r} (one of {', '.join(found)})")
    return found[name](seed, vocab, cfg)
