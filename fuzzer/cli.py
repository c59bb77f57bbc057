"""The `convfuzz` command line: parse, call, print. Bad input is one line on stderr and exit
code 2; a failing verdict is exit code 1."""

from __future__ import annotations

import sys
from typing import Any

import typer

# Commands live in fuzzer.commands (one module per group); importing them registers them on
# the app they share through fuzzer.commands.common.
from fuzzer.commands import (  # noqa: F401
    archs,
    campaign,
    findings,
    inspect,
    models,
    motifs,
    store,
)
from fuzzer.commands.common import app, err


def _click_exceptions() -> Any:
    try:  # recent typer vendors click
        from typer._click import exceptions
    except ImportError:  # older typer: click itself
        from click import exceptions
    return exceptions


def main() -> None:
    ex = _click_exceptions()
    no_args = getattr(ex, "NoArgsIsHelpError", ())
    try:
        code = app(standalone_mode=False)
    except no_args:  # nothing given: typer has printed the help already
        sys.exit(2)
    except ex.UsageError as e:  # a bad flag or value: one line, like every bad input
        where = f"{e.ctx.command_path}: " if e.ctx else ""
        hint = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
        err.print(f"[red]error:[/red] {where}{e.format_message()}{hint}", highlight=False,
                  soft_wrap=True)
        sys.exit(2)
    # typer.Abort, not the vendored click's: recent typer moved it out of click's exceptions,
    # and a missing name here turned every exception that reached this clause (a broken
    # pipe's exit, a Ctrl-C) into an AttributeError traceback.
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

if __name__ == "__main__":
    main()
