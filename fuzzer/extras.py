"""Optional dependencies: which `convfuzz[extra]` installs which importable package, and the
one-line error a missing one gives (a command or a target that needs it stops with exit 2,
never with a ModuleNotFoundError traceback)."""

from __future__ import annotations

import importlib.util

# Top-level import name -> the extra in pyproject.toml that installs it.
EXTRAS: dict[str, str] = {
    "scipy": "analyze",
    "matplotlib": "analyze",
    "transformers": "mine",
    "dask": "cluster",
    "distributed": "cluster",
    "onnxoptimizer": "passes",
    "onnxsim": "passes",
    "onnxslim": "passes",
    "openvino": "openvino",
    "executorch": "executorch",
    "litert_torch": "litert",
    "ai_edge_litert": "litert",
    "tensorflow": "tf",
    "tf2onnx": "tf",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def message(module: str, purpose: str = "") -> str:
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    what = f"{purpose} needs {top}, which is not installed" if purpose else (
        f"{top} is not installed")
    return what if extra is None else f"{what}: pip install 'convfuzz[{extra}]'"


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (openvino or executorch take
    seconds to import; the main process only needs to know they are there)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package
        return False


def require(module: str, purpose: str) -> None:
    if not installed(module):
        raise MissingExtra(message(module, purpose))


def from_error(e: ModuleNotFoundError, purpose: str = "") -> str | None:
    """The one-line message for an optional dependency's failed import, None when the missing
    module is not an optional dependency (a real bug, which keeps its traceback)."""
    name = (e.name or "").split(".")[0]
    return message(name, purpose) if name in EXTRAS else None
