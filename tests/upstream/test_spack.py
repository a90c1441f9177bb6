"""upstream.spack's pure parts and spackenv.check's digest: no Spack run (the set-up itself: test_spack_setup.py)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from spackenv import check
from upstream import pins, sources
from upstream import spack as setup

PROJECT = Path(__file__).resolve().parents[2]


def project_with(tmp_path: Path, edit) -> Path:
    for name in ("spack.yaml", "spack.lock"):
        shutil.copy(PROJECT / name, tmp_path / name)
    data = yaml.safe_load((tmp_path / "spack.yaml").read_text())
    edit(data["spack"])
    (tmp_path / "spack.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_sources_are_the_lock_s_spack_and_spack_yaml_s_packages() -> None:
    spack, packages = setup.spack_sources_for_install()
    lock = json.loads((PROJECT / "spack.lock").read_text())
    assert spack.version == lock["spack"]["version"] and spack.commit == pins.SPACK_TAG_COMMITS[spack.version]
    builtin = yaml.safe_load((PROJECT / "spack.yaml").read_text())["spack"]["repos"]["builtin"]
    assert packages.commit == builtin["commit"] and packages.url == builtin["git"]
    assert (spack.archive, packages.archive) == ("spack-1.0.2.tar.gz", f"spack-packages-{packages.commit[:7]}.tar.gz")


def test_packages_destination_must_be_in_spack_s_user_cache(tmp_path: Path) -> None:
    assert setup.spack_packages_destination() == "$user_cache_path/package_repos/spack-packages-32c54f0"
    elsewhere = project_with(tmp_path, lambda s: s["repos"]["builtin"].update(destination="/home/me/packages"))
    with pytest.raises(pins.PinError, match=r"destination.*\$user_cache_path/.*'/home/me/packages'") as err:
        setup.spack_packages_destination(elsewhere)
    assert "\n" not in str(err.value)


def test_an_unknown_spack_release_is_a_one_line_pin_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, lambda s: None)
    lock = json.loads((project / "spack.lock").read_text())
    lock["spack"]["version"] = "9.9.9"
    (project / "spack.lock").write_text(json.dumps(lock))
    with pytest.raises(pins.PinError, match="no known commit for Spack v9.9.9"):
        setup.spack_sources_for_install(project)


def git_archive_like(path: Path, top: str, commit: str | None) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": commit} if commit else {}) as tar:
        info = tarfile.TarInfo(f"{top}/README")
        tar.addfile(info, io.BytesIO(b""))
    return path


def test_archive_commit_reads_git_archive_s_pax_header(tmp_path: Path) -> None:
    sha = "5efd8eea1b8ea701074d72372a4acf0a972d736b"
    assert sources.archive_commit(git_archive_like(tmp_path / "a.tar.gz", "spack-1.0.2", sha)) == sha
    assert sources.archive_commit(git_archive_like(tmp_path / "b.tar.gz", "spack-1.0.2", None)) is None
    assert sources.archive_commit(tmp_path / "missing.tar.gz") is None


def test_a_mirror_archive_of_another_commit_is_refused(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    spack, _ = setup.spack_sources_for_install()
    git_archive_like(mirror / spack.archive, "spack-1.0.2", "0" * 40)
    with pytest.raises(sources.SourceError, match=f"git archive of 0{{40}}, not of the pinned {spack.commit}"):
        sources.tree(spack, tmp_path / "work", mirror=mirror, downloads=tmp_path / "downloads")


def test_mirror_archives_are_the_pinned_commits() -> None:
    mirror = sources.mirror_from_env()
    if mirror is None:
        pytest.skip(f"no source mirror (${sources.MIRROR_ENV} unset)")
    for source in setup.spack_sources_for_install():
        assert sources.archive_commit(mirror / source.archive) == source.commit


def test_site_configuration_turns_bootstrapping_off_and_keeps_caches_under_the_user_cache() -> None:
    _, packages = setup.spack_sources_for_install()
    files = {name: yaml.safe_load(text) for name, text in
             setup.site_config(packages, setup.spack_packages_destination()).items()}
    assert files["bootstrap.yaml"] == {"bootstrap": {"enable": False}}
    config = files["config.yaml"]["config"]
    for path in (config["misc_cache"], config["source_cache"], config["test_stage"], *config["build_stage"]):
        assert path.startswith("$user_cache_path/"), path
    assert files["repos.yaml"]["repos"]["builtin"] == yaml.safe_load(
        (PROJECT / "spack.yaml").read_text())["spack"]["repos"]["builtin"]


def test_wrapper_and_setup_env_give_the_owner_the_variables_of_env(tmp_path: Path) -> None:
    link, packages = "package_repos/spack-packages-abc1234", "../spack-packages-abc1234"
    function = setup.settings_function(link, packages)
    assert function in setup.wrapper_text(link, packages)
    assert function in setup.setup_env_text(tmp_path, link, packages)
    (tmp_path / "cache").mkdir()  # the owner's: writable
    names = sorted(setup.env(tmp_path))
    script = function + f'parsl_mpi_stack_spack "$1" && printf "%s\\n" {" ".join("$" + n for n in names)}'
    out = subprocess.run(["sh", "-c", script, "sh", str(tmp_path)], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")}).stdout
    assert dict(zip(names, out.splitlines(), strict=True)) == setup.env(tmp_path)
    assert not (tmp_path / "home").exists()  # nothing of the owner's goes elsewhere


def test_check_env_is_one_spec_with_the_project_s_packages() -> None:
    data = yaml.safe_load(setup.check_env_yaml(PROJECT))["spack"]
    assert data["specs"] == ["zlib-ng"] and data["view"] is False
    assert data["packages"] == yaml.safe_load((PROJECT / "spack.yaml").read_text())["spack"]["packages"]


SEEN = {"spack": "1.0.2", "spack_commit": None, "config": {"packages": {}}, "host": "linux-debian12-x86_64_v4",
        "libc": ["glibc", "2.36"], "repos": [{"namespace": "builtin", "root": "/r", "commit": "abc", "changes": ""}]}


def test_the_check_digest_follows_every_input_but_lock_metadata() -> None:
    manifest = (PROJECT / "spack.yaml").read_text()
    lock = json.loads((PROJECT / "spack.lock").read_text())
    base = check.digest(manifest, lock, SEEN)
    assert base is not None
    relabelled = {**lock, "spack": {"version": "1.0.2", "type": "git", "commit": "5efd8ee"},
                  "roots": list(reversed(lock["roots"]))}
    assert check.digest(manifest, relabelled, SEEN) == base
    assert check.digest(manifest.replace("22.05.8", "23.02.7"), lock, SEEN) != base
    for key, value in (("host", "linux-debian12-x86_64_v3"), ("config", {"packages": {"all": {}}}),
                       ("repos", [{**SEEN["repos"][0], "changes": " M packages/openmpi/package.py"}])):
        assert check.digest(manifest, lock, {**SEEN, key: value}) != base, key


def test_a_repository_outside_git_is_never_cached() -> None:
    lock = json.loads((PROJECT / "spack.lock").read_text())
    seen = {**SEEN, "repos": [{"namespace": "builtin", "root": "/r", "commit": None, "changes": None}]}
    assert check.digest("x", lock, seen) is None
