"""Shared fixtures: small hand-made Cases and one sandbox per test module; and the line
between unit and integration tests.

A test that starts a sandbox worker, runs an exporter, or runs a process (the CLI, a child
that dumps artifacts) is an integration test: it carries `@pytest.mark.integration` (or a
module's `pytestmark`), or is named in INTEGRATION below. `make test-fast` runs the others
with CONVFUZZ_UNIT=1, and then each of those ways out raises: an unmarked integration test
fails there at once, naming what it started, instead of slowing the inner loop down.
`make test` runs both kinds."""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from fuzzer.case import Case
from fuzzer.sandbox import Limits, Sandbox

CASES = Path(__file__).parent / "cases"


def make_case(nodes: list[dict[str, Any]], inputs: list[dict[str, Any]] | None = None,
              outputs: list[str] | None = None, seed: int = 7) -> Case:
    return Case.from_dict({
        "schema": 1, "seed": seed,
        "inputs": inputs or [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}],
        "nodes": nodes, "outputs": outputs or [nodes[-1]["id"]]})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=120, memory_mb=2048)) as sb:
        yield sb


# Integration tests of the modules that have both kinds: "*" for every test of a module, else
# the tests by name. A test may also carry the mark itself (new test files: prefer that).
INTEGRATION: dict[str, str | set[str]] = {
    "test_analyze": {"test_cli_missing_store_is_exit_2"},
    "test_campaign": "*",
    "test_case": {"test_same_case_same_onnx_bytes"},
    "test_causes": {"test_the_fp16_abs_finding_is_blamed_on_torch_onnx_not_torchlib",
                    "test_blame_names_the_torchlib_function_and_its_source",
                    "test_the_five_dtype_findings_are_one_dispatcher_cause",
                    "test_corpus_list_by_cause_json"},
    "test_cli": "*",
    "test_converters": "*",
    "test_corpus": "*",
    "test_coverage": {"test_ops_coverage_command_reports_the_share"},
    "test_eager_shapes": {
        "test_the_forkserver_preload_loads_the_default_seeds_once_for_every_worker"},
    "test_filing": {"test_squeeze_repro_exits_1_now_0_when_torchlib_is_fixed_3_when_unrelated",
                    "test_committed_reports_are_fileable"},
    "test_mine": {"test_statuses_and_progress", "test_ngrams", "test_attribute_values",
                  "test_deterministic"},
    "test_motifs": {"test_a_motif_case_exports_and_runs_on_both_exporters",
                    "test_a_motif_case_shrinks_to_the_planted_pair_and_keeps_its_constant",
                    "test_a_motif_case_becomes_a_repro",
                    "test_named_blocks_reach_the_fusions_they_are_named_for"},
    "test_ops_sweep": "*",
    "test_oracle": "*",
    "test_pack": "*",
    "test_report": "*",
    "test_rewriters": "*",
    "test_sandbox": "*",
    "test_shrink": {"test_a_failure_at_another_shape_shrinks_past_its_inputs",
                    "test_a_runtime_failure_at_another_size_shrinks_past_its_inputs",
                    "test_a_shrunk_int_pow_still_fails",
                    "test_planted_pair_shrinks_to_exactly_that_pair",
                    "test_real_bug_shrinks_to_at_most_two_operators"},
    "test_storage": {"test_a_damaged_store_is_one_line_and_exit_2",
                     "test_a_second_writer_is_refused_naming_the_holder_and_readers_go_on",
                     "test_a_newer_store_is_refused_naming_the_convfuzz_that_wrote_it",
                     "test_the_lock_dies_with_its_process"},
    "test_store": {"test_a_campaign_files_every_failure_under_a_finding",
                   "test_closing_the_store_finishes_the_artifacts_of_its_findings",
                   "test_two_cases_with_one_minimized_failure_are_one_finding",
                   "test_finding_folder_holds_what_a_report_needs",
                   "test_a_known_failure_is_matched_and_counted_once"},
    "test_store_robust": {"test_a_truncated_store_is_one_line_then_recovered_in_place",
                          "test_recover_rebuilds_every_finding_whose_folder_is_intact",
                          "test_a_full_disk_stops_the_campaign_cleanly_and_resume_goes_on",
                          "test_recover_uses_the_sqlite3_shell_where_its_recover_works"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        which = INTEGRATION.get(item.module.__name__.rsplit(".", 1)[-1] if item.module else "")
        name = getattr(item, "originalname", item.name)
        if which == "*" or (isinstance(which, set) and name in which):
            item.add_marker(pytest.mark.integration)


def _refuse(what: str) -> Any:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError(f"this unit test {what}: mark it integration (tests/conftest.py)")
    return refuse


def pytest_configure(config: pytest.Config) -> None:
    """Under CONVFUZZ_UNIT=1 (`make test-fast`, which deselects integration tests) nothing may
    leave the process, module fixtures included: each way out raises."""
    if os.environ.get("CONVFUZZ_UNIT") != "1":
        return
    # matplotlib builds its font cache on first import by running `fc-list`: on a fresh
    # machine that is a process no test started; build it before the guard (without the
    # [analyze] extra its tests skip).
    with contextlib.suppress(ImportError):
        import matplotlib.font_manager  # noqa: F401
    mp = pytest.MonkeyPatch()
    mp.setattr(Sandbox, "_start", _refuse("starts a sandbox worker"))
    mp.setattr(torch.onnx, "export", _refuse("runs an ONNX exporter"))
    mp.setattr(subprocess.Popen, "__init__", _refuse("starts a process"))
    mp.setattr(multiprocessing.process.BaseProcess, "start", _refuse("starts a child process"))
