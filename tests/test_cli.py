"""The command line: exit codes, one-line errors for bad input, JSON output, a short fuzz."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer.case import Case
from tests.conftest import CASES

EXE = [sys.executable, "-m", "fuzzer.cli"]


def cf(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_run_json_passes_with_exit_0() -> None:
    r = cf("run", str(CASES / "good_chain.json"), "-t", "torchscript-17/ort-all", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["case"]) == 16
    (v,) = d["verdicts"]
    # optional: the fusions that fired and the blame (rewriter coverage, issue 23)
    required = {"target", "outcome", "stage", "symptom", "attribution", "detail"}
    assert required <= set(v) <= required | {"fusions", "blame"}
    assert (v["target"], v["outcome"]) == ("torchscript-17/ort-all", "pass")


def test_output_into_a_closed_pipe_ends_without_a_traceback() -> None:
    """`convfuzz ... | head` closes the pipe early: no traceback, no AttributeError."""
    import os

    rd, wr = os.pipe()
    os.close(rd)  # every write the command makes now fails with EPIPE
    try:
        r = subprocess.run([*EXE, "targets"], stdout=wr, stderr=subprocess.PIPE, text=True,
                           timeout=120)
    finally:
        os.close(wr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1


def test_run_failing_case_exits_1(tmp_path: Path) -> None:
    case = json.loads((CASES / "good_chain.json").read_text())
    p = tmp_path / "c.json"
    p.write_text(json.dumps(case))
    r = cf("run", str(p), "-t", "fault-abort", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["verdicts"][0]["symptom"] == "process_death"


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "/nonexistent/case.json"], "no such file"),
    (["run", str(CASES / "good_chain.json"), "-t", "nosuch-exporter"], "unknown target"),
    (["run", str(CASES / "good_chain.json"), "-t", "ort-all"], "must start with an exporter"),
    (["fuzz", "--time", "1", "--op", "aten::nope"], "unknown operator"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    r = cf(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_malformed_case_is_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"schema": 1, "seed": 1, "inputs": [], "nodes": [
        {"id": "n0", "op": "aten::frobnicate", "args": []}], "outputs": ["n0"]}))
    r = cf("run", str(p))
    assert r.returncode == 2
    assert "unknown operator 'aten::frobnicate'" in r.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["fuzz", "--no-such-flag"], "No such option: --no-such-flag"),
    (["fuzz", "--workers", "0"], "--workers"),
    (["fuzz", "--pack", "0"], "--pack"),
    (["run"], "Missing argument"),
    (["frobnicate"], "No such command"),
])
def test_bad_flag_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    r = cf(*args)
    assert r.returncode == 2
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_help_explains_every_option() -> None:
    for cmd in ([], ["run"], ["fuzz"]):
        r = cf(*cmd, "--help")
        assert r.returncode == 0
    text = cf("fuzz", "--help").stdout
    for opt in ("--time", "--cases", "--seed", "--target", "--out", "--workers", "--timeout"):
        assert opt in text
    assert "runs/<seed>" in text  # markdown help must not eat it as an HTML tag


def test_command_list_reflows_docstrings() -> None:
    # The command panel once kept each docstring's hard line breaks ("judge,| record ...").
    r = subprocess.run([*EXE, "--help"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COLUMNS": "200"})
    rows = [line.strip("│ ") for line in r.stdout.splitlines()]
    (fuzz,) = [row for row in rows if row.startswith("fuzz ")]
    assert "judge, record every verdict in the store" in fuzz


def test_targets_lists_named_chains() -> None:
    d = json.loads(cf("targets", "--json").stdout)
    assert "torchscript-17/ort-all" in d["chains"] and "dynamo/ort-all" in d["chains"]
    assert not any(c["fault"] for c in d["components"])


def test_short_fuzz_records_every_case(tmp_path: Path) -> None:
    out = tmp_path / "store"
    r = cf("fuzz", "--cases", "12", "--time", "120", "--seed", "3", "-t",
           "torchscript-17/ort-all", "--source", "random", "--out", str(out))
    assert r.returncode == 0, r.stderr
    db = sqlite3.connect(out / "store.sqlite")
    n_cases = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    n_verdicts = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
    assert n_cases == 12 and n_verdicts == 12
    # Every Case (failing or not) is retrievable from the store as a valid Case.
    for (text,) in db.execute("SELECT json FROM cases"):
        Case.from_json(text)
