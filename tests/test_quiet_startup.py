"""TF's start-up lines (absl's notice, oneDNN, CUDA) are hidden from the CLI and the sweep
workers' logs; anything else TF writes while it loads is passed on."""

import subprocess
import sys
from pathlib import Path

from qprop_tf.runtime import STARTUP_CHATTER

ROOT = Path(__file__).resolve().parent.parent
CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795706829.972899    3124 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors",
    "I0000 00:00:1795706829.973380    3124 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
]
KEPT = [
    "W0000 00:00:1795706829.973380    3124 some_op.cc:31] a real warning",
    "E0000 00:00:1795706843.840282    3242 cuda_platform.cc:52] failed call to cuInit",
    "I0000 00:00:1795706829.973380    3124 other.cc:31] another info line",
    "UserWarning: something in Python",
]


def test_only_the_startup_lines_are_filtered():
    assert all(STARTUP_CHATTER.match(line) for line in CHATTER)
    assert not any(STARTUP_CHATTER.match(line) for line in KEPT)


def test_sweep_worker_log_has_no_startup_lines(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "reproduce.sweep", "--profile", "smoke", "--domains", "Hopper",
         "--algos", "trpo", "--seeds", "1", "--workers", "1", "--backend", "local",
         "--results", str(results), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [log] = list(results.rglob("log.txt"))
    text = log.read_text()
    assert "it    1" in text  # the run's own lines are there
    assert not any(STARTUP_CHATTER.match(line) for line in text.splitlines()), text
    assert "oneDNN" not in proc.stdout + proc.stderr
    assert (log.parent / "policy.npz").is_file() and (log.parent / "DONE").is_file()
