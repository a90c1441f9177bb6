"""Each variant's Parsl Config, built without a cluster."""

import sys
import weakref
from pathlib import Path

import pytest

from workflows import variants
from workflows.flux import instance
from workflows.launchers import RANK_LAUNCHERS
from workflows.settings import PROJECT, Settings, SettingsError, node_local_problem
from workflows.variants.base import worker_init


def settings(variant, **kw):
    return Settings(variant=variant, run_dir=Path("/shared/run"), venv="/v", tag="parslmpi-t", **kw)


def test_htex_corrects_the_slot_overcount_and_asks_for_every_usable_block():
    ex = variants.get("htex").config(settings("htex")).executors[0]
    assert ex.max_workers_per_node == 1
    assert ex.provider.nodes_per_block == 2 and ex.provider.parallelism == 2
    assert (ex.provider.init_blocks, ex.provider.max_blocks) == (2, 2)
    assert "#SBATCH --comment=parslmpi-t" in ex.provider.scheduler_options
    assert ". /v/bin/activate" in ex.provider.worker_init


def test_static_blocks_are_fixed_at_repeats():
    ex = variants.get("static").config(settings("static", repeats=6)).executors[0]
    p = ex.provider
    assert (p.init_blocks, p.min_blocks, p.max_blocks) == (6, 6, 6) and ex.max_workers_per_node == 1


def test_mpi_shares_one_block_between_concurrent_runs():
    s = settings("mpi", cluster_nodes=8, repeats=10)
    ex = variants.get("mpi").config(s).executors[0]
    assert ex.provider.nodes_per_block == 8 and ex.max_workers_per_block == 4
    assert variants.get("mpi").run_resources(s) == {"num_nodes": 2, "ranks_per_node": 2}


def test_flux_loads_and_bindings_reach_the_instance_before_flux_start():
    s = Settings(variant="flux", run_dir=Path("/r"), loads=("openmpi", "flux-sched", "miniconda3"), use_spack=True)
    cmd = instance.launch_cmd(worker_init(s), "/opt/flux/bin/flux", "/opt/flux/lib/flux/python3.11", "/r/flux")
    assert cmd.index("spack load miniconda3") < cmd.index("export PYTHONPATH=/opt/flux/lib/flux/python3.11")
    assert cmd.index("export PYTHONPATH=/opt/flux/lib/flux/python3.11") < cmd.index("{flux} start")
    assert "${{PYTHONPATH:+:$PYTHONPATH}}" in cmd  # braces doubled: FluxExecutor str.format()s the command
    assert "export WORKFLOWS_FLUX_INITRC=/opt/flux/etc/flux/shell/initrc.lua" in cmd
    # every broker writes the Slurm allocation's config (the same file, atomically), then starts with it
    write = f"{sys.executable} -m workflows.flux.allocation /r/flux/resource-$SLURM_JOB_ID.toml && "
    assert cmd.index("export PYTHONPATH=/opt/flux/lib/flux/python3.11") < cmd.index(write)
    assert (f"{write}{{flux}} start -c /r/flux/resource-$SLURM_JOB_ID.toml -Sconf.shell_initrc={instance.INITRC} "
            "{python}") in cmd
    assert variants.get("flux").run_command(s, "/r/mpi_hello") == "/r/mpi_hello"
    assert variants.get("flux").run_resources(s) == {"num_tasks": 4, "num_nodes": 2, "cores_per_task": 1,
                                                     "exclusive": True}


def test_mpi_with_the_flux_launcher_starts_its_block_under_flux_and_survives_a_lost_node():
    s = settings("mpi", rank_launcher="flux")
    ex = variants.get("mpi").config(s).executors[0]
    script = ex.provider.launcher("process_worker_pool.py --x", 1, 4, "/shared/run/submit")
    config = "/shared/run/submit/resource-$SLURM_JOB_ID.toml"
    assert (f"{sys.executable} -m workflows.flux.allocation {config} && srun --mpi=pmi2 --no-kill -N 4 "
            f"--ntasks-per-node=1 flux start -c {config} env ${{SLURM_CONF:+SLURM_CONF=$SLURM_CONF}} "
            "SLURM_NODELIST=$SLURM_NODELIST SLURM_JOB_ID=$SLURM_JOB_ID bash /shared/run/submit/flux_block_") in script
    assert "process_worker_pool.py --x" in script
    assert "#SBATCH --no-kill" in ex.provider.scheduler_options
    assert "--launcher flux" in variants.get("mpi").run_command(s, "/r/mpi_hello")
    plain = variants.get("mpi").config(settings("mpi")).executors[0]
    assert "--no-kill" not in plain.provider.scheduler_options
    assert plain.provider.launcher("cmd", 1, 4) == "cmd"


def test_every_variant_and_launcher_is_listed_once_for_demo_and_bench():
    assert [(c.label, c.args) for c in variants.choices()] == [
        ("htex", ["htex"]), ("static", ["static"]), ("mpi", ["mpi", "--launcher", "mpirun"]),
        ("mpi/flux", ["mpi", "--launcher", "flux"]), ("flux", ["flux"])]


def test_a_rank_launcher_is_refused_where_the_variant_has_none():
    with pytest.raises(SettingsError, match=r"^--launcher flux: the htex variant launches with mpirun only "
                                            r"\(flux is for: mpi, flux\)$"):
        variants.checked(settings("htex", rank_launcher="flux"))
    with pytest.raises(SettingsError, match=r"the flux variant launches with flux only \(mpirun is for: htex, "):
        variants.checked(settings("flux"))  # Settings' default rank launcher is mpirun
    assert variants.checked(settings("mpi", rank_launcher="flux")) is variants.get("mpi")


def test_every_variant_lists_its_rank_launchers_and_each_is_a_known_one():
    assert {v.name: v.rank_launchers for v in variants.REGISTRY.values()} == {
        "htex": ("mpirun",), "static": ("mpirun",), "mpi": ("mpirun", "flux"), "flux": ("flux",)}
    assert all(set(v.rank_launchers) <= set(RANK_LAUNCHERS) for v in variants.REGISTRY.values())


def test_what_ran_is_named_by_variant_and_rank_launcher():
    pairs = [("mpi", "mpirun"), ("mpi", "flux"), ("flux", "flux"), ("htex", "mpirun")]
    assert [variants.label(v, r) for v, r in pairs] == ["mpi", "mpi/flux", "flux", "htex"]


@pytest.mark.parametrize("run_dir, ok", [("/tmp/x", False), ("/dev/shm/r", False), ("/var/tmp/r", False),
                                         ("/shared/run", True), (str(PROJECT / "runs" / "r"), True)])
def test_a_run_dir_the_nodes_cannot_see_is_refused(run_dir, ok):
    problem = node_local_problem(Path(run_dir))
    assert (problem is None) == ok
    if not ok:
        assert "shared filesystem" in problem


@pytest.mark.skipif(instance.missing(bindings=True) is not None, reason="Flux is not set up here (scripts/setup.sh)")
def test_flux_config_builds():
    ex = variants.get("flux").config(settings("flux")).executors[0]
    assert ex.provider.nodes_per_block == 4 and "--mpi=pmi2 --no-kill" in ex.provider.launcher.overrides
    # FluxExecutor's finalizer joins a thread that only start() starts: unregister it for this unstarted one.
    for fin in list(weakref.finalize._registry):
        if fin.peek() and fin.peek()[0] is ex:
            fin.detach()


@pytest.mark.parametrize("kw, word", [({"repeats": 0}, "--repeats"), ({"nodes_per_run": 5}, "more than the 4 nodes"),
                                      ({"mpi": "intel"}, "--mpi"), ({"rank_launcher": "srun"}, "--launcher must be")])
def test_bad_settings_are_refused(kw, word):
    with pytest.raises(SettingsError, match=word):
        Settings(**{"variant": "htex", "run_dir": Path("/r"), **kw})


def test_an_unknown_variant_is_the_registrys_to_refuse():
    s = Settings(variant="dask", run_dir=Path("/r"))  # Settings knows no variants: no import circle
    with pytest.raises(SettingsError, match="unknown variant 'dask' .choose from htex, static, mpi, flux."):
        variants.checked(s)
