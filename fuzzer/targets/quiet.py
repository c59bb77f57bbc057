"""Keeping converters' chatter out of the terminal."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings


@contextlib.contextmanager
def quiet():
    """Exporters print warnings and diagnostics to stdout/stderr; a campaign keeps them out of
    the terminal (the error text that matters travels in the exception)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if logging.root.manager.disable >= logging.WARNING:
            yield  # already silenced (a worker, for good): toggling clears every logger's
            return  # cache, ~0.3 ms an export with torch's hundreds of loggers
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
