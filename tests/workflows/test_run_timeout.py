"""--run-timeout under the Flux variants ends the run's Flux job itself, while its block lives on.

The MPI program's first try answers, then every rank turns into a process deaf to SIGTERM (it ignores it
and execs sleep under a name of its own). What ends it is not the Parsl future but the job: the rank's
`timeout` (flux: the command is the Flux job) or Flux's own time limit (`mpi --launcher flux`: a `flux run`
killed by the `timeout` around it would leave its job running). The test watches every node's processes
(the local cluster's nodes share this machine's process table) while the block still runs: the deaf ranks
must be gone within seconds of the limit, so that the retry gets their nodes and the run verifies.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import PROJECT
from .processes import processes_named
from .test_run import RUN, our_jobs

pytestmark = pytest.mark.cluster
RUN_TIMEOUT = 6
RANKS = 4  # 2 nodes x 2 CPUs


def deaf_source(directory: Path, name: str) -> Path:
    """workflows/mpi_hello.c whose ranks, on the run's first try (a marker file per rank), answer and then hold
    forever as a process called `name` that ignores SIGTERM; on a retry they answer and finish."""
    text = (PROJECT / "workflows" / "mpi_hello.c").read_text()
    text = text.replace("#include <stdio.h>", "#include <stdio.h>\n#include <fcntl.h>\n#include <signal.h>\n"
                        "#include <unistd.h>")
    text = text.replace("  MPI_Finalize();", f"""  char mark[4096];
  snprintf(mark, sizeof mark, "{directory}/tried-%d", rank);
  int fd = open(mark, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd >= 0) {{
    close(fd);
    signal(SIGTERM, SIG_IGN);
    execl("/bin/sleep", "{name}", "600", (char *)0);
  }}
  MPI_Finalize();""")
    path = directory / "deaf.c"
    path.write_text(text)
    return path


def watch_deaf_ranks(proc: subprocess.Popen, env: dict, name: str, timeout: float = 180) -> tuple[float, float]:
    """(when all RANKS deaf ranks held, when none was left), checking the workflow and its block still run then."""
    deadline = time.monotonic() + timeout
    held = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the workflow ended first: {proc.communicate()}"
        count = len(processes_named(name))
        if held is None and count == RANKS:
            held = time.monotonic()
        elif held is not None and count == 0:
            assert our_jobs(env), "the block was gone before the deaf ranks"
            return held, time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"deaf ranks {'never all held' if held is None else 'still there'}: "
                         f"{processes_named(name)}")


@pytest.mark.parametrize("args", [["flux"], ["mpi", "--launcher", "flux"]], ids=["flux", "mpi-flux"])
def test_a_run_timeout_ends_the_flux_job_and_its_deaf_ranks_while_the_block_lives(slurm_cluster, shared_dir,
                                                                                  flux_ready, args):
    name = f"parslmpi-deaf-{shared_dir.name[-6:]}"
    run_dir = shared_dir / "run"
    proc = subprocess.Popen([*RUN, args[0], "--no-spack", "--source", str(deaf_source(shared_dir, name)),
                             "--run-dir", str(run_dir), "--repeats", "1", "--retries", "1",
                             "--run-timeout", str(RUN_TIMEOUT), "--stall-timeout", "90", *args[1:]],
                            env=slurm_cluster.env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        held, gone = watch_deaf_ranks(proc, slurm_cluster.env, name)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in processes_named(name):
            subprocess.run(["kill", "-9", str(pid)], check=False)
    assert gone - held < RUN_TIMEOUT + 12, f"the deaf ranks outlived the limit by {gone - held - RUN_TIMEOUT:.1f} s"
    data = json.loads((run_dir / "result.json").read_text())
    assert proc.returncode == 0 and data["verified"], (data["problems"], err[-2000:])
    [run] = data["runs"]
    assert len(run["failed_attempts"]) == 1 and len(run["ranks"]) == RANKS
    assert "Traceback" not in err
    assert our_jobs(slurm_cluster.env) == []
