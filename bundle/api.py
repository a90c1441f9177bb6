"""The Python API, `bundle.pack()`, `bundle.redeploy()`, `bundle.verify()`, `bundle.diff()`: the CLI's
commands as functions whose keyword arguments are its options (`python -m bundle` is a thin shell over
them). Each returns the summary `--json` prints, as a dict; bad input and every failure raise BundleError,
whose message is one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bundle.deploying.redeploy import redeploy as deploy
from bundle.deploying.state import meta_dir
from bundle.deploying.verify import verify_deployment
from bundle.errors import BundleError
from bundle.format import manifest
from bundle.format.records import Manifest
from bundle.packing import scan, writer
from bundle.reading import reader
from bundle.shipping import ship

LEVELS = {"zstd": range(1, 23), "gzip": range(1, 10)}  # what each compressor accepts (zstd >= 20 is slow)


class Progress(Protocol):
    """What a step reports as it goes (the CLI draws it on stderr): the totals planned, each file done,
    the bytes sent (a ship), the end."""

    def plan(self, files: int, nbytes: int) -> None: ...

    def add(self, nbytes: int) -> None: ...

    def sent(self, nbytes: int) -> None: ...

    def finish(self) -> None: ...


class _Silent:
    def plan(self, files: int, nbytes: int) -> None:
        pass

    def add(self, nbytes: int) -> None:
        pass

    def sent(self, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


ProgressFactory = Callable[[str], Progress]  # a step's label ("hash", "pack", "redeploy", ...) -> its Progress


def _progress(factory: ProgressFactory | None, label: str) -> Progress:
    return factory(label) if factory is not None else _Silent()


def _check_level(compression: str, level: int | None) -> None:
    if compression not in writer.SUFFIX:
        raise BundleError(f"compression {compression!r}: expected one of {', '.join(sorted(writer.SUFFIX))}")
    span = LEVELS[compression]
    if level is not None and (not isinstance(level, int) or isinstance(level, bool) or level not in span):
        raise BundleError(f"level {level!r}: {compression} takes {span.start} to {span.stop - 1}")


def pack(root: str | Path, output: str | Path, *, store: str | Path | None = None, lock: str | Path | None = None,
         with_spack: bool = False, compression: str = "zstd", level: int | None = None,
         progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Pack the Spack root ROOT (its store at opt/spack, or STORE) into one reproducible bundle.

    Args:
        root: SPACK_ROOT, or a store directory.
        output: ``"DIR/"`` (or an existing directory) writes ``DIR/bundle-<hash>.tar.zst``, ``DIR/NAME`` writes
            ``DIR/NAME-<hash>.tar.zst``.
        store: the store directory under ROOT, when not ROOT/opt/spack.
        lock: the spack.lock to include (default: ROOT/spack.lock when present).
        with_spack: also pack Spack itself (bin/, lib/spack, etc/spack, share/spack; no caches).
        compression: ``"zstd"`` or ``"gzip"``.
        level: the compression level (zstd 1-22, default 3; gzip 1-9, default 6).
        progress: called with each step's label, returns the Progress it reports to.

    Returns:
        ``bundle`` (the path written), ``manifest`` (its hash), ``store_paths``, ``files``, ``bytes``,
        ``compressed_bytes``.
    """
    _check_level(compression, level)
    hashing = _progress(progress, "hash")
    m = scan.build(Path(root), Path(store) if store else None, Path(lock) if lock else None, on_file=hashing.add,
                   with_spack=with_spack)
    hashing.finish()
    files, nbytes = manifest.totals(m["paths"])
    packing = _progress(progress, "pack")
    packing.plan(files, nbytes)
    out = writer.write(m, output, compression=compression, level=level, on_file=packing.add)
    packing.finish()
    return {"bundle": str(out), "manifest": manifest.manifest_hash(m), "store_paths": len(m["paths"]),
            "files": files, "bytes": nbytes, "compressed_bytes": out.stat().st_size}


def redeploy(bundle: str | Path, *, prefix: str | Path | None = None, relocate: bool = False, wait: bool = False,
             prune: bool = False, profile: bool = False, profile_file: str | Path | None = None,
             to: str | None = None, ssh: str | None = None, remote_python: str = "python3",
             progress: ProgressFactory | None = None,
             on_target: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Verify BUNDLE, stage it, swap it in at PREFIX (default: where it was built), merge Spack's database.

    Args:
        bundle: a bundle file, or ``HOST:PATH`` to pull one over ssh (read once, as a stream).
        prefix: where to deploy (default: where the bundle was built).
        relocate: deploy at another prefix, rewriting paths.
        wait: wait for a concurrent redeploy instead of refusing.
        prune: remove store paths deployed earlier that the bundle no longer has (else only listed).
        profile: also add a line sourcing the snippet to PROFILE_FILE.
        profile_file: the profile file PROFILE edits (default ``~/.bashrc``).
        to: ``[USER@]HOST:PREFIX``: ship over ssh, sending only the store paths the target lacks.
        ssh: the ssh command, split like a shell (default: ``$BUNDLE_SSH`` or ``ssh``).
        remote_python: with TO, the Python (3.6 or newer) that runs the target's side.
        progress: called with the step's label, returns the Progress it reports to.
        on_target: called with the target once it is chosen, before anything is written.

    Returns:
        What was written, kept, pruned and recorded (``target``, ``written_paths``, ``snippet``, ...); with
        TO, also what crossed (``host``, ``sent_bytes``, ``sent_paths``, ...).
    """
    if to:
        if profile or prefix:
            raise BundleError("--to HOST:PREFIX names the target; --prefix and --profile are not available with it")
        return _ship(Path(bundle), to, relocate=relocate, wait=wait, prune=prune, ssh=ssh,
                     remote_python=remote_python, progress=_progress(progress, "ship"))
    steps = _progress(progress, "redeploy")
    edited = Path(profile_file or Path.home() / ".bashrc") if profile else None
    source = ship.PullSource(str(bundle), ssh) if ship.is_remote(str(bundle)) else Path(bundle)
    try:
        result = deploy(source, Path(prefix) if prefix else None, relocate=relocate, wait=wait, prune=prune,
                        profile=edited, on_file=steps.add, on_plan=steps.plan, on_target=on_target)
    finally:
        if isinstance(source, ship.PullSource):
            source.close()
    steps.finish()
    return result.as_dict()


def _ship(bundle: Path, to: str, *, relocate: bool, wait: bool, prune: bool, ssh: str | None, remote_python: str,
          progress: Progress) -> dict[str, Any]:
    out = ship.ship(bundle, to, ssh=ssh, python=remote_python, relocate=relocate, wait=wait, prune=prune,
                    on_sent=progress.sent, on_plan=progress.plan, on_file=progress.add)
    progress.finish()
    return out


def verify(path: str | Path, *, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Check every file's sha256: of a bundle file, or of a deployment against the manifest it recorded.

    Args:
        path: a bundle file or a deployment's directory.
        progress: called with ``"verify"``, returns the Progress it reports to.

    Returns:
        ``manifest`` (its hash), ``store_paths``, ``problems`` (empty), and ``bundle`` or ``target``.

    Raises:
        BundleError: the first problem found, and how many there are.
    """
    path = Path(path)
    steps = _progress(progress, "verify")
    if path.is_file():
        m, digest = reader.read(path, on_file=steps.add)
        steps.finish()
        return {"bundle": str(path), "manifest": digest, "store_paths": len(m["paths"]), "problems": []}
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle or deployment")
    result = verify_deployment(path, on_file=steps.add)
    steps.finish()
    if result["problems"]:
        raise BundleError(f"{path}: {len(result['problems'])} problems, first: {result['problems'][0]}")
    return result


def _load(path: Path) -> Manifest:
    """A manifest from a bundle file or a deployment directory."""
    if path.is_file():
        return reader.read(path, manifest_only=True)[0]
    recorded = meta_dir(path) / "manifest.json"
    if not recorded.is_file():
        raise BundleError(f"{path}: neither a bundle nor a deployment")
    try:
        m = json.loads(recorded.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"{recorded}: not JSON ({err})") from None
    manifest.check(m)
    return m


def diff(a: str | Path, b: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Store paths ``added``, ``removed`` and ``changed`` from A to B (each a bundle file or a deployment),
    with their bytes."""
    return manifest.diff(_load(Path(a)), _load(Path(b)))
