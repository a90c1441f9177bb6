"""Where a redeploy may write: the target chosen from the bundle or --prefix, and refused when unsafe.

A bundle names the root it was built at, so without --prefix the bundle chooses where to write:
that root must be absolute and not a system directory, and a directory that exists and holds
something must be a deployment of this tool or a Spack root (else --prefix has to name it). All
of it is decided before anything is created.
"""

import os
from pathlib import Path
from typing import Optional, Tuple

from bundle.errors import BundleError
from bundle.format.reserved import META

__all__ = ["META", "check_existing", "choose", "system_dir"]
SYSTEM = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media",
                    "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local",
                    "/var", "/var/tmp", "/var/lib", "/snap", "/nix"})
SYSTEM_TREES = ("/bin/", "/boot/", "/dev/", "/etc/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/proc/", "/run/",
                "/sbin/", "/sys/", "/usr/")  # nothing under these, except /usr/local/<x>
# A relocated prefix lands in shebang lines (the kernel splits them at whitespace) and in scripts, where
# paths stand unquoted (`exec /prefix/bin/x "$@"`): a character the shell would read needs quoting there.
NEEDS_QUOTING = frozenset(" \t\n\r\v\f\\'\"$`;&|<>()*?[]!")


def system_dir(path: str) -> bool:
    """True for /, the system's top directories and anything under /usr (but /usr/local/X), /etc, /proc, ..."""
    real = os.path.realpath(path)
    for p in {path, real}:
        if p in SYSTEM or (p.startswith(SYSTEM_TREES) and not p.startswith("/usr/local/")):
            return True
    return False


def check_prefix_text(prefix: str) -> None:
    """A --prefix must be UTF-8 (argv hands other bytes over surrogate-escaped)."""
    try:
        prefix.encode()
    except UnicodeEncodeError:
        raise BundleError(f"--prefix {os.fsencode(prefix)!r} is not valid UTF-8") from None


def choose(built: str, prefix: Optional[str], relocate: bool) -> Tuple[Path, Optional[Tuple[str, str]]]:
    """(target, (old, new) when relocating): pure, raises when the target is refused by name alone."""
    if prefix is not None:
        check_prefix_text(prefix)
    elif not built.startswith("/"):
        raise BundleError(f"bundle was built at a relative root {built!r}; give --prefix")
    target = os.path.abspath(prefix) if prefix is not None else built
    if system_dir(target):
        raise BundleError(f"{target}: a system directory is never a deployment target; give --prefix")
    if target == built:
        return Path(target), None
    if not relocate:
        raise BundleError(f"bundle was built at {built}; deploying at {target} needs --relocate")
    unsafe = sorted(NEEDS_QUOTING & set(target))
    if unsafe or any(ord(c) < 32 for c in target):
        raise BundleError(f"--prefix {target!r}: {''.join(unsafe) or 'a control character'} would need quoting in "
                          "the shebang lines and scripts relocation rewrites; choose a prefix without it")
    return Path(target), (built, target)


def is_deployment(target: Path) -> bool:
    """The tool's state directory is there (a first run killed early leaves it with only its lock)."""
    return (target / META).is_dir()


def is_spack_root(target: Path) -> bool:
    return (target / "bin" / "spack").is_file() or (target / "opt" / "spack").is_dir()


def check_existing(target: Path, explicit: bool) -> None:
    """Refuse a target that holds something that is neither ours nor Spack's, unless --prefix named it;
    and a file where the tool's state directory should be."""
    if os.path.lexists(target) and not target.is_dir():
        raise BundleError(f"{target}: exists and is not a directory")
    meta = target / META
    if os.path.lexists(meta) and not meta.is_dir():
        raise BundleError(f"{meta}: exists and is not a directory (the tool keeps its state there)")
    if explicit or not target.is_dir() or is_deployment(target) or is_spack_root(target):
        return
    try:
        empty = next(os.scandir(target), None) is None
    except OSError as err:
        raise BundleError(f"{target}: {err.strerror}") from None
    if not empty:
        raise BundleError(f"{target}: not empty, and neither a deployment nor a Spack root; "
                          "name it with --prefix to deploy there")
