"""The command line: its defaults are ClusterSpec's, `env` adds the set-up's Flux and Spack."""

import os
import subprocess
import sys

from localcluster import cli
from localcluster.spec import DEFAULT_ROOT, ClusterSpec, slurm_conf

from ..conftest import PROJECT


def test_flag_defaults_are_the_specs_own():
    spec = cli.spec_from(cli.parser().parse_args(["up"]))
    assert spec == ClusterSpec(root=DEFAULT_ROOT.resolve(), host=spec.host)


def test_flags_set_every_field_but_root_and_host():
    args = ["up", "--nodes", "3", "--cpus", "5", "--bridge", "b1", "--subnet", "10.9.0.0/24", "--prefix", "p-",
            "--ctld-port", "2001", "--slurmd-port", "2002", "--root", "/srv/x"]
    spec = cli.spec_from(cli.parser().parse_args(args))
    assert (spec.nodes, spec.cpus, spec.bridge, spec.subnet, spec.prefix, spec.ctld_port, spec.slurmd_port) == (
        3, 5, "b1", "10.9.0.0/24", "p-", 2001, 2002)


def test_slurm_conf_and_the_spec_agree_on_the_state_layout():
    spec = ClusterSpec(root=PROJECT / "x", host="h", nodes=2)
    conf = dict(line.split("=", 1) for line in slurm_conf(spec).splitlines() if line.startswith("Slurm"))
    assert conf["SlurmdPidFile"].replace("%n", "n2") == str(spec.slurmd_pid_file("n2"))
    assert conf["SlurmdSpoolDir"].replace("%n", "n2") == str(spec.spool_dir("n2"))
    assert conf["SlurmctldPidFile"] == str(spec.slurmctld_pid_file)


def env_with_upstream(tmp_path, main: str | None) -> subprocess.CompletedProcess:
    """`local-cluster env` where the importable `upstream` package is a stand-in (main None: it fails to import)."""
    pkg = tmp_path / "fake" / "upstream"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('not here')\n" if main is None else "")
    (pkg / "__main__.py").write_text(main or "")
    (pkg / "layout.py").write_text("from pathlib import Path\n\ndef prefix():\n    return Path('/opt/stack')\n")
    return subprocess.run([sys.executable, "-m", "localcluster", "env", "--root", str(tmp_path / "c")],
                          cwd=pkg.parent, env={**os.environ, "PYTHONPATH": f"{pkg.parent}:{PROJECT}"},
                          capture_output=True, text=True, check=True)


def test_env_ends_with_the_lines_of_upstream_env(tmp_path):
    main = "def env_lines(root):\n    return [f'export PATH={root}/flux/bin:{root}/spack/bin:$PATH']\n"
    out = env_with_upstream(tmp_path, main).stdout.splitlines()
    assert out[0] == f"export SLURM_CONF={tmp_path}/c/etc/slurm.conf"
    assert out[-1] == "export PATH=/opt/stack/flux/bin:/opt/stack/spack/bin:$PATH"
    assert len(out) == 11


def test_env_without_upstream_is_the_clusters_lines_alone(tmp_path):
    proc = env_with_upstream(tmp_path, None)
    assert len(proc.stdout.splitlines()) == 10 and "PATH=" not in proc.stdout and proc.stderr == ""


def test_env_agrees_with_python_m_upstream_env(tmp_path):
    ours = subprocess.run([str(PROJECT / "scripts" / "local-cluster.sh"), "env", "--root", str(tmp_path)],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    theirs = subprocess.run([sys.executable, "-m", "upstream", "env"], cwd=PROJECT, capture_output=True, text=True)
    extra = [line for line in theirs.stdout.splitlines() if line] if theirs.returncode == 0 else []
    assert ours[10:] == extra
