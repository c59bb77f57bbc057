"""What every `convfuzz` command shares: the Typer app they register on, the consoles, the
common options, the bad-input guard and the helpers that turn options into targets and a
sandbox. cli.py imports the command modules; they import this, never cli.py."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="convfuzz: an operator-sequence fuzzer for PyTorch -> ONNX converters "
                       "(both torch.onnx exporters) and ONNX Runtime.")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

TargetOpt = Annotated[list[str] | None, typer.Option(
    "--target", "-t", help="Target chain, e.g. torchscript-17/ort-all or dynamo/ref; repeat for "
    "several (default: torchscript-17/ort-all and dynamo/ort-all); in `fuzz`, T@0.2 runs T on "
    "a 20% share of the Cases. See `convfuzz targets`.")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", help="Seconds one Case may take on one target before it is a `hang`.")]
MemoryOpt = Annotated[int, typer.Option(
    "--memory-mb", help="Resident memory (MB) a worker may add before it is `out_of_memory`.")]


def seeds_option(purpose: str) -> Any:
    """The --seeds option of every command that reads mined seeds, with what it reads them
    for."""
    return Annotated[Path | None, typer.Option(
        "--seeds", help=f"Mined seeds directory ({purpose}; default: the repo's seeds/, "
        "written by `convfuzz mine`).")]


def bad_input(msg: str) -> typer.Exit:
    # on use, like the imports of guarded()
    from rich.markup import escape

    # Escaped: `pip install 'convfuzz[openvino]'` is not rich markup.
    err.print(f"[red]error:[/red] {escape(msg)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def guarded(fn: F) -> F:
    """Map every known kind of bad input to a one-line error and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        # on use: `convfuzz --help` and bad flags stay fast (no torch)
        from fuzzer import extras
        from fuzzer.case import CaseError
        from fuzzer.generate import GenerationError
        from fuzzer.store import StoreError
        from fuzzer.targets import TargetError

        try:
            return fn(*a, **kw)
        except (CaseError, TargetError, StoreError, GenerationError) as e:
            raise bad_input(str(e)) from None
        except KeyError as e:  # unknown operator names in --op
            raise bad_input(str(e.args[0]) if e.args else "unknown key") from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise bad_input(f"{e.filename}: {e.strerror}") from None
        except ConnectionError as e:  # e.g. an unreachable Dask scheduler
            raise bad_input(str(e)) from None
        except extras.MissingExtra as e:
            raise bad_input(str(e)) from None
        except ModuleNotFoundError as e:  # an optional dependency (scipy in analyze, dask
            msg = extras.from_error(e)  # for --scheduler...); any other module is a bug
            if msg is None:
                raise
            raise bad_input(msg) from None
    return wrapper  # type: ignore[return-value]


def open_sandbox(timeout: float, memory_mb: int = 4096) -> Any:
    """The sandbox every command runs Cases in, with the command's limits."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.sandbox import Limits, Sandbox

    return Sandbox(Limits(timeout=timeout, memory_mb=memory_mb))


def target_names(names: list[str] | None) -> list[str]:
    """Canonical target names (a `@WEIGHT` suffix, for campaigns, is dropped here)."""
    # on use: `convfuzz --help` and bad flags stay fast (no torch)
    from fuzzer.targets import DEFAULT_TARGETS, parse

    return [parse(n.rsplit("@", 1)[0]).name for n in (names or list(DEFAULT_TARGETS))]
