"""The store survives what disks and people do, tried with real campaigns and real SQLite: a
truncated store is refused in one line and `store recover` returns every finding whose folder
is intact; a second campaign on a store is refused while readers work; a campaign that fills
its disk stops cleanly and `--resume` continues once space is freed, losing no finding."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzzer import storage
from fuzzer.store import Store

# Not `-m fuzzer.cli`: the sandbox's forkserver then re-imports the main module and warns on
# stderr, and these tests count stderr's lines.
EXE = [sys.executable, "-c", "from fuzzer.cli import main; main()"]
# Fails often and shrinks fast (softplus' threshold is ignored): findings in a few seconds.
CAMPAIGN = ["--seed", "4", "--source", "random", "-t", "torchscript-17/ort-all",
            "--op", "aten::softplus", "--nondefault", "1.0"]
UNFILED = ("SELECT COUNT(*) FROM verdicts v WHERE outcome = 'bug' AND NOT EXISTS "
           "(SELECT 1 FROM finding_cases f WHERE f.case_hash = v.case_hash AND "
           "f.target = v.target)")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout)


def rows(root: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"{(root / storage.DB).resolve().as_uri()}?mode=ro", uri=True,
                          timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def one_line(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert r.returncode == code, (r.stdout[-2000:], r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("campaign") / "store"
    r = cli("fuzz", "--cases", "48", *CAMPAIGN, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert rows(out, "SELECT COUNT(*) FROM findings")[0][0] >= 1
    return out


def folders(root: Path) -> set[str]:
    return {d.name for d in storage.findings_dir(root).iterdir() if d.is_dir()}


def test_a_truncated_store_is_one_line_then_recovered_in_place(campaign: Path,
                                                               tmp_path: Path) -> None:
    st = tmp_path / "store"
    shutil.copytree(campaign, st)
    before = {r[0] for r in rows(st, "SELECT id FROM findings")}
    db = st / storage.DB
    data = db.read_bytes()
    db.write_bytes(data[:len(data) // 2] + os.urandom(20000))  # half the file, then garbage
    one_line(cli("fuzz", "--resume", str(st), "--cases", "2"), 2, "damaged",
             f"convfuzz store recover {st}")
    r = cli("store", "check", str(st))
    assert r.returncode == 1 and "integrity: damaged" in r.stdout, r.stdout
    r = cli("store", "recover", str(st))
    assert r.returncode == 0, r.stderr
    assert "kept as" in r.stdout and f"findings: {len(before)} in the recovered store" in (
        r.stdout.replace("\n", " ")), r.stdout
    assert list(st.glob(f"{storage.DB}.damaged-*"))  # the damaged file is kept, not deleted
    assert {r[0] for r in rows(st, "SELECT id FROM findings")} == before


@pytest.mark.slow  # ~25 s more: a campaign resumed on a recovered store
def test_a_recovered_store_resumes(campaign: Path, tmp_path: Path) -> None:
    st = tmp_path / "store"
    shutil.copytree(campaign, st)
    db = st / storage.DB
    data = db.read_bytes()
    db.write_bytes(data[:len(data) // 2] + os.urandom(20000))
    assert cli("store", "recover", str(st)).returncode == 0
    # The recovered store is a store: the campaign goes on, and files what lost its links.
    r = cli("fuzz", "--resume", str(st), "--cases", "3", "--no-shrink")
    assert r.returncode == 0, r.stderr
    assert rows(st, UNFILED) == [(0,)]


def test_recover_rebuilds_every_finding_whose_folder_is_intact(campaign: Path,
                                                              tmp_path: Path) -> None:
    st = tmp_path / "store"
    shutil.copytree(campaign, st)
    ids = folders(st)
    db = st / storage.DB
    # Keep the first 8 pages only: the findings table (created after the case tables) is
    # gone, so every finding must come back from its folder.
    db.write_bytes(db.read_bytes()[:8 * 4096] + os.urandom(4096))
    broken = sorted(ids)[0]
    (storage.findings_dir(st) / broken / "verdict.json").write_text("{not json")
    new = tmp_path / "recovered"
    r = cli("store", "recover", str(st), "--out", str(new))
    assert r.returncode == 0, r.stderr
    out = r.stdout.replace("\n", " ")
    assert f"lost findings/{broken}" in out, out
    got = {r[0] for r in rows(new, "SELECT id FROM findings")}
    assert got == ids - {broken}
    assert f"{len(ids) - 1} rebuilt from their folders" in " ".join(out.split()), out
    assert (st / storage.DB).stat().st_size == 9 * 4096  # --out leaves the source as it was
    r = cli("corpus", "list", "--store", str(new))
    assert r.returncode == 0 and all(i[:8] in r.stdout for i in got), r.stdout


@pytest.mark.slow  # ~40 s; tests/test_storage.py refuses a second `fuzz` beside a writer
def test_a_second_campaign_is_refused_while_readers_work(tmp_path: Path) -> None:
    out = tmp_path / "store"
    first = subprocess.Popen([*EXE, "fuzz", "--time", "300", *CAMPAIGN, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            time.sleep(0.5)
            with contextlib.suppress(sqlite3.Error):
                if (out / storage.DB).is_file() and rows(
                        out, "SELECT COUNT(*) FROM cases")[0][0] >= 8:
                    break
        else:
            pytest.fail("the first campaign recorded no Case in time")
        config = rows(out, "SELECT value FROM meta WHERE key = 'config'")
        # The second campaign and the readers at once, beside the first.
        verbs = {"second": ["fuzz", "--out", str(out), "--cases", "5", "--seed", "9"],
                 "corpus": ["corpus", "list", "--store", str(out)],
                 "targets": ["targets", "--store", str(out)],
                 "check": ["store", "check", str(out)]}
        procs = {k: subprocess.Popen([*EXE, *v], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                 for k, v in verbs.items()}
        done = {k: subprocess.CompletedProcess(p.args, 0, *p.communicate(timeout=300))
                for k, p in procs.items()}
        for k, p in procs.items():
            done[k].returncode = p.returncode
        one_line(done["second"], 2, f"pid {first.pid} ", "a campaign is writing this store")
        assert rows(out, "SELECT value FROM meta WHERE key = 'config'") == config
        for k in ("corpus", "targets", "check"):
            assert done[k].returncode == 0, (k, done[k].stderr)
        assert f"campaign: running (pid {first.pid} " in done["check"].stdout
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the kernel drops the lock
        first.wait()
    assert storage.holder(out) is None
    Store(out).close()  # the next writer gets the store (test_campaign resumes after a kill)


@pytest.fixture
def small_disk(tmp_path: Path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_the_campaign_cleanly_and_resume_goes_on(small_disk: Path) -> None:
    out = small_disk / "store"
    ballast = small_disk / "ballast"
    free = shutil.disk_usage(small_disk).free
    with ballast.open("wb") as f:  # all but 600 kB: some dozens of Cases fill the rest
        f.write(b"\0" * (free - 600 * 1024))
    r = cli("fuzz", "--cases", "3000", "--time", "200", *CAMPAIGN, "--out", str(out))
    one_line(r, 2, "no space left on the disk", f"convfuzz fuzz --resume {out}")
    assert storage.holder(out) is None  # the lock went with the campaign
    found = {r[0] for r in rows(out, "SELECT id FROM findings")}
    n_before = rows(out, "SELECT COUNT(*) FROM cases")[0][0]
    assert n_before > 0  # everything committed before stays readable
    assert cli("corpus", "list", "--store", str(out)).returncode == 0
    for fid in found:  # a finding's row exists only once its folder was written
        assert (storage.findings_dir(out) / fid / "case.json").is_file()
    ballast.unlink()  # space is freed
    r = cli("fuzz", "--resume", str(out), "--cases", "4", "--no-shrink")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout
    assert found <= {r[0] for r in rows(out, "SELECT id FROM findings")}
    assert rows(out, "SELECT COUNT(*) FROM cases")[0][0] == n_before + 4
    assert rows(out, UNFILED) == [(0,)]


def test_recover_uses_the_sqlite3_shell_where_its_recover_works(campaign: Path,
                                                                tmp_path: Path) -> None:
    from fuzzer.recover import sqlite3_with_recover

    if sqlite3_with_recover() is None:
        pytest.skip("no sqlite3 shell with a working .recover here (Debian's and Ubuntu's are "
                    "built without sqlite_dbpage); the B-tree way is tested above")
    st = tmp_path / "store"
    shutil.copytree(campaign, st)
    db = st / storage.DB
    data = db.read_bytes()
    db.write_bytes(data[:len(data) // 2] + os.urandom(20000))
    r = cli("store", "recover", str(st), "--out", str(tmp_path / "new"))
    assert r.returncode == 0 and "sqlite3 .recover" in r.stdout, r.stdout
    assert {r[0] for r in rows(tmp_path / "new", "SELECT id FROM findings")} == folders(st)
