"""What the set-up builds, read from the project's own pins (spack.yaml, spack.lock), and where from.

One source of truth: flux-core and flux-sched versions are the ones spack.yaml pins, Spack's version
is the one that wrote spack.lock, spack-packages' commit is the one spack.yaml's `repos:` pins.
What this module adds is only what those files cannot say: upstream addresses, the release
tarballs' sha256 (as spack-packages lists them) and the commit each Spack tag must point at.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml

import projectdir

from .errors import UpstreamError

# sha256 of upstream's release tarballs, as the pinned spack-packages lists them (flux_core/package.py, ...).
RELEASE_SHA256 = {
    ("flux-core", "0.73.0"): "d029c3da68bd0a0bea40d964de772e90a55eec72303b610396882f9e94d8c0c6",
    ("flux-sched", "0.44.0"): "a2b71a0c5fb51a89d32cff9eca2fc7c275a7a1a81746bea8d00b4c1868af366e",
}
# The commit each Spack release tag points at: a clone is checked against it.
SPACK_TAG_COMMITS = {"1.0.2": "5efd8eea1b8ea701074d72372a4acf0a972d736b"}
SPACK_GIT = "https://github.com/spack/spack.git"
SPACK_PACKAGES_GIT = "https://github.com/spack/spack-packages.git"


class PinError(UpstreamError, ValueError):
    """The project's pins cannot say what to build."""

    refused = True


@dataclasses.dataclass(frozen=True)
class Source:
    """One upstream source: its archive name in a mirror, and how to get it from upstream."""

    name: str
    version: str  # a release version, or a commit for git sources
    url: str  # a release tarball, or a git repository
    sha256: str | None = None  # release tarballs only
    commit: str | None = None  # git sources: the commit the checkout must be at

    @property
    def archive(self) -> str:
        """The file name a source mirror holds it under (NAME-VERSION.tar.gz, commits shortened to 7)."""
        version = self.version[:7] if self.commit and self.version == self.commit else self.version
        return f"{self.name}-{version}.tar.gz"


def checkout() -> Path:
    """The checkout whose pins apply: $PARSL_MPI_STACK_PROJECT, else the working directory or a folder above it,
    else the source tree (projectdir); an installed wheel holds no spack.yaml."""
    try:
        return projectdir.required()
    except projectdir.NotFound as err:
        raise PinError(str(err)) from None


def _spack_yaml(project: Path | None) -> dict:
    project = project or checkout()
    try:
        return yaml.safe_load((project / "spack.yaml").read_text())["spack"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        raise PinError(f"cannot read {project / 'spack.yaml'}: {err}") from None


def pinned_version(package: str, project: Path | None = None) -> str:
    """The exact version spack.yaml pins for a root spec (`flux-core@0.73.0` -> 0.73.0)."""
    for spec in _spack_yaml(project).get("specs", []):
        m = re.match(rf"{re.escape(package)}@=?([\w.]+)(?=[\s+~^%]|$)", str(spec).strip())
        if m:
            return m.group(1)
    raise PinError(f"spack.yaml pins no exact version of {package}")


def flux_sources(project: Path | None = None) -> list[Source]:
    out = []
    for name in ("flux-core", "flux-sched"):
        version = pinned_version(name, project)
        sha = RELEASE_SHA256.get((name, version))
        url = f"https://github.com/flux-framework/{name}/releases/download/v{version}/{name}-{version}.tar.gz"
        out.append(Source(name, version, url, sha256=sha))
    return out


def spack_version(project: Path | None = None) -> str:
    """The Spack release that wrote spack.lock (its `"spack": {"version": ...}`)."""
    project = project or checkout()
    try:
        version = json.loads((project / "spack.lock").read_text())["spack"]["version"]
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise PinError(f"spack.lock does not say which Spack wrote it: {err}") from None
    return str(version)


def spack_packages_commit(project: Path | None = None) -> str:
    """The spack-packages commit spack.yaml pins (repos: builtin: commit:)."""
    repos = _spack_yaml(project).get("repos") or {}
    builtin = repos.get("builtin") if isinstance(repos, dict) else None
    commit = builtin.get("commit") if isinstance(builtin, dict) else None
    if not commit or not re.fullmatch(r"[0-9a-f]{40}", str(commit)):
        raise PinError("spack.yaml pins no spack-packages commit (repos: builtin: commit: <40 hex digits>)")
    return str(commit)


def spack_sources(project: Path | None = None) -> list[Source]:
    version = spack_version(project)
    commit = SPACK_TAG_COMMITS.get(version)
    if commit is None:
        raise PinError(f"no known commit for Spack v{version} (add it to upstream/pins.py SPACK_TAG_COMMITS)")
    packages = spack_packages_commit(project)
    return [Source("spack", version, SPACK_GIT, commit=commit),
            Source("spack-packages", packages, SPACK_PACKAGES_GIT, commit=packages)]
