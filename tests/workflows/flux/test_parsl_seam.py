"""parsl_seam: the only module that knows Parsl's private names; a changed Parsl means the stock path, not an error."""

from __future__ import annotations

import ast
import collections
import json
import os
import re
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import parsl.executors.flux.executor as stock
import pytest
from parsl.app.app import bash_app

from workflows.flux import instance, parsl_seam
from workflows.flux.executor import DirectFluxExecutor, DirectJob
from workflows.settings import PROJECT

from ...needs import require

WORKFLOWS = PROJECT / "workflows"
SEAM = WORKFLOWS / "flux" / "parsl_seam.py"
RENAMED_PARSL = Path(__file__).resolve().parent / "renamed_parsl"


@bash_app
def hello(stderr: str | None = None) -> str:
    return "echo hello"


@pytest.fixture
def executors() -> Iterator[list[DirectFluxExecutor]]:
    """Executors never started: Parsl's finalizer would join their thread at exit (and fail), so drop it."""
    made: list[DirectFluxExecutor] = []
    yield made
    for finalizer in list(weakref.finalize._registry):  # type: ignore[attr-defined]
        if any(finalizer.peek() and finalizer.peek()[0] is ex for ex in made):
            finalizer.detach()


def executor(tmp_path: Path, made: list[DirectFluxExecutor]) -> DirectFluxExecutor:
    made.append(DirectFluxExecutor(working_dir=str(tmp_path / "flux"), flux_path="/bin/true"))
    return made[-1]


def private_names() -> set[str]:
    """The seam's own list, and every underscore name Parsl's FluxExecutor module defines or sets on self."""
    tree = ast.parse(Path(stock.__file__).read_text())
    names = set(parsl_seam.PRIVATE_NAMES)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        defined = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []
        names |= {n for n in [*defined, *(t.id for t in targets if isinstance(t, ast.Name))] if n.startswith("_")}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id == "self" and n.attr.startswith("_") and not n.attr.startswith("__")}
    return names


def violations(source: str, names: set[str]) -> list[str]:
    """Where a module names a private Parsl name, imports a private Parsl module or name, or Parsl's Flux internals."""
    found = [f"names {n}" for n in sorted(names) if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("parsl"):
            modules = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            imported = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            modules, imported = [a.name for a in node.names if a.name.startswith("parsl")], []
        else:
            continue
        private = [m for m in modules if any(part.startswith("_") for part in m.split("."))] + [
            n for n in imported if n.startswith("_")]
        found += [f"imports {p}" for p in private]
        found += [f"imports {m}" for m in modules if m == parsl_seam.STOCK]
    return found


def test_the_scan_sees_each_kind_of_private_use() -> None:
    names = private_names()
    assert {"_submit_single_job", "_FluxJobInfo", "_submission_queue", "_flux_future", "wrap_error",
            "remote_side_bash_executor", "_complete_future"} <= names
    dirty = ("import parsl.executors.flux.executor as stock\nfrom parsl.executors.flux import executor\n"
             "from parsl.app.bash import remote_side_bash_executor\nfrom parsl.dataflow._x import y\n"
             "def f(ex):\n    return ex._submission_queue  # and _FluxJobInfo\n")
    assert violations(dirty, names) == [
        "names _FluxJobInfo", "names _submission_queue", "names remote_side_bash_executor",
        "imports parsl.executors.flux.executor", "imports parsl.executors.flux.executor",
        "imports parsl.dataflow._x.y", "imports parsl.dataflow._x"]
    clean = "from parsl.executors import FluxExecutor\nfrom parsl.app.errors import AppTimeout\nself._stop = 1\n"
    assert violations(clean, names) == []


def test_no_module_but_the_seam_names_a_private_parsl_name() -> None:
    names = private_names()
    modules = sorted(p for p in WORKFLOWS.rglob("*.py") if p != SEAM)
    assert len(modules) > 20 and WORKFLOWS / "flux" / "executor.py" in modules
    found = {str(p.relative_to(PROJECT)): v for p in modules if (v := violations(p.read_text(), names))}
    assert found == {}
    assert violations(SEAM.read_text(), names)  # the seam itself does name them: the scan reads real code


def test_the_pinned_parsl_has_every_name_the_direct_path_uses() -> None:
    parsl, problems = parsl_seam.internals()
    assert problems == [] and parsl is not None and parsl.stock is stock
    assert stock._FluxJobInfo._fields == parsl_seam.JOBINFO_FIELDS


def test_a_bash_app_is_queued_as_its_command_with_no_pickle(tmp_path: Path, executors: list) -> None:
    ex = executor(tmp_path, executors)
    assert ex.direct
    (tmp_path / "flux").mkdir()
    ex.submit(hello.wrapped_remote_function, {"num_tasks": 2}, stderr=str(tmp_path / "h.err"))
    job = ex._submission_queue.get_nowait()
    assert isinstance(job, DirectJob) and job.bash.command == "echo hello"
    assert job.resource_spec == {"num_tasks": 2}
    assert list((tmp_path / "flux").iterdir()) == []
    assert (tmp_path / "h.err").read_text().startswith("--> executable follows <--\necho hello\n")


@pytest.mark.parametrize("change", ["jobinfo", "single", "future"])
def test_a_changed_parsl_is_said_in_one_line_and_takes_the_stock_path(
        change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        executors: list) -> None:
    if change == "jobinfo":
        monkeypatch.setattr(stock, "_FluxJobInfo", collections.namedtuple("_FluxJobInfo", ("future", "spec")))
    elif change == "single":
        monkeypatch.delattr(stock, "_submit_single_job")
    else:
        monkeypatch.setattr(stock, "FluxFutureWrapper", type("Wrapper", (), {}))
    ex = executor(tmp_path, executors)
    err = capsys.readouterr().err
    assert not ex.direct and len(err.strip().splitlines()) == 1 and "stock path" in err
    if change != "single":
        return  # Parsl's own submit() needs its own _FluxJobInfo and FluxFutureWrapper
    (tmp_path / "flux").mkdir()
    ex.submit(hello.wrapped_remote_function, {})
    assert not isinstance(ex._submission_queue.get_nowait(), DirectJob)
    assert [p.name for p in (tmp_path / "flux").iterdir()] == ["0_in.pkl"]


@pytest.mark.flux
@pytest.mark.parametrize("renamed", ["parsl.app.bash:remote_side_bash_executor",
                                     "parsl.executors.flux.executor:_submit_single_job"])
def test_a_parsl_renamed_before_import_falls_back_and_runs_the_app(renamed: str, tmp_path: Path) -> None:
    """The rename is in Parsl's source as imported (every process, the ranks too): no ImportError, the fallback."""
    require(instance.missing(bindings=True))
    path = [str(RENAMED_PARSL), str(PROJECT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "RENAMED_PARSL": renamed, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    proc = subprocess.run([sys.executable, "-c", "import run_bash_app; run_bash_app.cli()", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["renamed"] and got["variant_executor"] == "DirectFluxExecutor" and got["direct"] == [False, False]
    assert got["result"] == 0 and got["stdout"] == "hello from rank 0\n"
    assert got["pickles"] == ["0_in.pkl", "0_out.pkl"]  # Parsl's stock path ran it
    fallbacks = [line for line in proc.stderr.splitlines() if "every task takes Parsl's stock path" in line]
    name = renamed.split(":")[1]
    assert len(fallbacks) == 2 and all(name in line for line in fallbacks), proc.stderr[-3000:]
