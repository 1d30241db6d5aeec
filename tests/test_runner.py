"""Grid behaviour: one record per run, resume skips finished runs, failures are recorded and isolated."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ratbench.cli.app import app
from ratbench.plan import plan, spread_over_gpus
from ratbench.results.lock import run_lock


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A fresh data root; the registered `toy` dataset is generated there on first use."""
    root = tmp_path / "data"
    monkeypatch.setenv("RATBENCH_DATA", str(root))
    return root


ARGS = ["run", "--methods", "rnp,ver", "--datasets", "toy", "--seeds", "1,2", "--profile", "smoke",
        "--set", "hidden_size=16", "--set", "epochs=2"]


def _records(results):
    return sorted(results.glob("runs/*/*/*.json"))


def _trained(output: str) -> int:
    """How many runs a `ratbench run` trained: outside a terminal it prints one line per finished run."""
    return sum(1 for line in output.splitlines() if "] finished " in line or "] failed " in line)


def test_grid_writes_one_record_per_run_and_resumes(tmp_path, data):
    out = tmp_path / "res"
    r = CliRunner().invoke(app, [*ARGS, "--results", str(out)])
    assert r.exit_code == 0, r.output
    recs = _records(out)
    assert len(recs) == 4 and _trained(r.output) == 4
    rec = json.loads(recs[0].read_text())
    for key in ("schema_version", "status", "dataset", "method", "seed", "profile", "config", "config_hash",
                "versions", "device", "data", "selected_epoch", "metrics", "curves"):
        assert key in rec, key
    assert rec["status"] == "finished" and rec["dataset"] == "toy" and rec["schema_version"] == 2
    assert rec["vectors"] == "toy"
    assert {"S", "Acc", "P", "R", "F1"} <= set(rec["metrics"])
    assert {"epoch", "train_seconds", "eval_seconds", "train_loss", "train_acc", "dev_acc", "dev_S", "test_S",
            "test_F1"} <= set(rec["curves"][0])
    # simulate an interrupted grid: one record is missing, the others are finished
    recs[1].unlink()
    r = CliRunner().invoke(app, [*ARGS, "--results", str(out), "--dry-run"])
    assert r.exit_code == 0 and r.output.count("finished ") == 3 and r.output.count("train    ") == 1, r.output
    assert len(_records(out)) == 3  # a dry run trains nothing
    r = CliRunner().invoke(app, [*ARGS, "--results", str(out)])
    assert r.exit_code == 0, r.output
    assert _trained(r.output) == 1 and len(_records(out)) == 4
    r = CliRunner().invoke(app, [*ARGS, "--results", str(out), "--no-resume"])
    assert _trained(r.output) == 4


def test_failed_run_is_recorded_and_grid_goes_on(tmp_path, data, monkeypatch):
    from ratbench.methods.ver import VER

    def boom(self, *a, **k):
        raise FloatingPointError("training loss became nan; try a smaller lr")

    monkeypatch.setattr(VER, "train_step", boom)
    out = tmp_path / "res"
    r = CliRunner().invoke(app, [*ARGS, "--results", str(out)])
    assert r.exit_code == 0, r.output
    recs = [json.loads(p.read_text()) for p in _records(out)]
    status = {(x["method"], x["seed"]): x["status"] for x in recs}
    assert status == {("rnp", 1): "finished", ("rnp", 2): "finished", ("ver", 1): "failed", ("ver", 2): "failed"}
    failed = next(x for x in recs if x["status"] == "failed")
    assert "FloatingPointError" in failed["error"]
    assert "failed" in r.output


def test_unknown_names_are_one_paragraph_errors(tmp_path):
    r = CliRunner().invoke(app, ["run", "--methods", "rnpp", "--datasets", "synth", "--results", str(tmp_path)])
    assert r.exit_code == 1
    assert "Unknown method 'rnpp'" in r.output and "Did you mean 'rnp'" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["run", "--set", "lamda_sparsity=2", "--results", str(tmp_path)])
    assert r.exit_code == 1 and "lambda_sparsity" in r.output


def test_a_run_locked_by_another_process_is_left_alone(tmp_path, data):
    out = tmp_path / "res"
    jobs = plan(["rnp"], ["toy"], [1, 2], "smoke", {"hidden_size": 16, "epochs": 2}, None, "cpu", data, out)
    with run_lock(jobs[0].path) as mine:
        assert mine
        with run_lock(jobs[0].path) as theirs:  # a second open file description conflicts, as across processes
            assert not theirs
        r = CliRunner().invoke(app, ["run", "--methods", "rnp", "--datasets", "toy", "--seeds", "1,2",
                                     "--profile", "smoke", "--set", "hidden_size=16", "--set", "epochs=2",
                                     "--results", str(out)])
        assert r.exit_code == 0, r.output
        assert "another ratbench process" in r.output and "rnp toy s1" in r.output
        assert not jobs[0].path.exists() and jobs[1].path.exists() and _trained(r.output) == 1
    # the holder went away (the OS drops its lock even after kill -9): the same command finishes the grid
    r = CliRunner().invoke(app, ["run", "--methods", "rnp", "--datasets", "toy", "--seeds", "1,2",
                                 "--profile", "smoke", "--set", "hidden_size=16", "--set", "epochs=2",
                                 "--results", str(out)])
    assert r.exit_code == 0 and jobs[0].path.exists() and _trained(r.output) == 1


def test_sigkill_mid_grid_loses_only_the_run_in_progress(tmp_path, data):
    """A real `ratbench run` process is killed with SIGKILL after its first record; the same command then
    trains exactly the missing runs, and every record is complete and valid."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL on this platform")
    out = tmp_path / "res"
    args = [*ARGS, "--results", str(out)]
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from ratbench.cli.app import app; app(sys.argv[1:])",
                             *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _records(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p: p.read_bytes() for p in _records(out)}
    assert 1 <= len(before) < 4, "the grid should have been killed after its first record"
    assert proc.returncode == -signal.SIGKILL

    r = CliRunner().invoke(app, [*args])
    assert r.exit_code == 0, r.output
    assert _trained(r.output) == 4 - len(before)  # only the runs without a record were trained
    recs = _records(out)
    assert len(recs) == 4
    for p in recs:
        rec = json.loads(p.read_text())
        assert rec["status"] == "finished" and rec["metrics"]["F1"] >= 0
    for p, data in before.items():  # finished runs were not redone
        assert p.read_bytes() == data
    assert not list(out.rglob("*.part"))


def test_runs_spread_round_robin_over_gpus_and_keep_explicit_devices(tmp_path):
    jobs = plan(["rnp", "ver"], ["toy"], [1, 2, 3], "smoke", {}, None, "auto", tmp_path, tmp_path)
    spread = spread_over_gpus(jobs, 2)
    assert [j.device for j in spread] == ["cuda:0", "cuda:1"] * 3
    assert [j.path for j in spread] == [j.path for j in jobs]  # same runs, same records
    cpu = plan(["rnp"], ["toy"], [1], "smoke", {}, None, "cpu", tmp_path, tmp_path)
    assert spread_over_gpus(cpu, 2)[0].device == "cpu" and spread_over_gpus(jobs, 0) == jobs


def test_jobs_2_writes_the_same_records_as_jobs_1(tmp_path):
    """Worker processes train exactly what the serial loop trains (same seeds, same threads, same numbers)."""
    data = tmp_path / "data"
    base = ["run", "--methods", "rnp", "--datasets", "toy", "--seeds", "1,2", "--profile", "smoke",
            "--set", "hidden_size=16", "--set", "epochs=2", "--set", "num_threads=1", "--data-root", str(data)]
    numbers = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        r = CliRunner().invoke(app, [*base, "--jobs", jobs, "--results", str(out)])
        assert r.exit_code == 0, r.output
        recs = {p.name: json.loads(p.read_text()) for p in _records(out)}
        numbers.append({name: (rec["metrics"], [{k: v for k, v in row.items() if not k.endswith("_seconds")}
                                                for row in rec["curves"]]) for name, rec in recs.items()})
    assert len(numbers[0]) == 2 and numbers[0] == numbers[1]


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_killing_the_grid_process_stops_its_workers(tmp_path, sig):
    """`kill` (or kill -9) of `ratbench run --jobs 2` must not leave worker processes training on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-c", "from ratbench.cli.app import app; app()", "run", "--methods", "rnp",
           "--datasets", "toy", "--seeds", "1-4", "--profile", "smoke", "--set", "epochs=500",
           "--jobs", "2", "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "res")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = [p for p in _children(proc.pid)
                   if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(workers) == 2, "the grid should have started two worker processes"
    time.sleep(1.0)  # the workers are past their initializer
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers still running after {sig} of the grid process"
    assert not list((tmp_path / "res").rglob("*.json"))  # nothing finished, nothing half-written
