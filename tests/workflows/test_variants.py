"""Each variant's Parsl Config, built without a cluster."""

import shutil
import weakref
from pathlib import Path

import pytest

from workflows import variants
from workflows.settings import Settings, SettingsError


def settings(variant, **kw):
    return Settings(variant=variant, run_dir=Path("/shared/run"), venv="/v", tag="parslmpi-t", **kw)


def test_htex_corrects_the_slot_overcount_and_asks_for_every_usable_block():
    ex = variants.load("htex").config(settings("htex")).executors[0]
    assert ex.max_workers_per_node == 1
    assert ex.provider.nodes_per_block == 2 and ex.provider.parallelism == 2
    assert (ex.provider.init_blocks, ex.provider.max_blocks) == (2, 2)
    assert "#SBATCH --comment=parslmpi-t" in ex.provider.scheduler_options
    assert ". /v/bin/activate" in ex.provider.worker_init


def test_static_blocks_are_fixed_at_repeats():
    ex = variants.load("static").config(settings("static", repeats=6)).executors[0]
    p = ex.provider
    assert (p.init_blocks, p.min_blocks, p.max_blocks) == (6, 6, 6) and ex.max_workers_per_node == 1


def test_mpi_shares_one_block_between_concurrent_runs():
    s = settings("mpi", cluster_nodes=8, repeats=10)
    ex = variants.load("mpi").config(s).executors[0]
    assert ex.provider.nodes_per_block == 8 and ex.max_workers_per_block == 4
    assert variants.load("mpi").run_resources(s) == {"num_nodes": 2, "ranks_per_node": 2}


def test_flux_loads_reach_the_instance_before_flux_start():
    s = Settings(variant="flux", run_dir=Path("/r"), loads=("openmpi", "flux-sched", "miniconda3"), use_spack=True)
    cmd = variants.load("flux").launch_cmd(s, "/opt/flux/bin/flux")
    assert cmd.index("spack load miniconda3") < cmd.index("{flux} start")
    assert "export WORKFLOWS_FLUX_INITRC=/opt/flux/etc/flux/shell/initrc.lua" in cmd
    assert f"{{flux}} start -Sconf.shell_initrc={variants.load('flux').INITRC} {{python}}" in cmd
    assert variants.load("flux").run_command(s, "/r/mpi_hello") == "/r/mpi_hello"
    assert variants.load("flux").run_resources(s) == {"num_tasks": 4, "num_nodes": 2, "cores_per_task": 1}


@pytest.mark.skipif(shutil.which("flux") is None, reason="flux is not installed (it comes with the Spack environment)")
def test_flux_config_builds():
    ex = variants.load("flux").config(settings("flux")).executors[0]
    assert ex.provider.nodes_per_block == 4 and "--mpi=pmi2" in ex.provider.launcher.overrides
    # FluxExecutor's finalizer joins a thread that only start() starts: unregister it for this unstarted one.
    for fin in list(weakref.finalize._registry):
        if fin.peek() and fin.peek()[0] is ex:
            fin.detach()


@pytest.mark.parametrize("kw, word", [({"repeats": 0}, "--repeats"), ({"nodes_per_run": 5}, "more than the 4 nodes"),
                                      ({"variant": "dask"}, "unknown variant"), ({"mpi": "intel"}, "--mpi")])
def test_bad_settings_are_refused(kw, word):
    with pytest.raises(SettingsError, match=word):
        Settings(**{"variant": "htex", "run_dir": Path("/r"), **kw})
