"""python3 projectdir/toolsvenv.py NAME [ARGS...]: one of the checkout's console scripts, the project not installed.

scripts/console-script runs this when neither .venv nor PATH has NAME, as on a login node that has only the
system python3 (no root, no set-up). Once per interpreter and env/tools-requirements.txt, it makes a venv of
that Python holding those requirements in the per-user cache ($XDG_CACHE_HOME, else ~/.cache, then
parsl-mpi-stack/tools-venv/), saying so in one line; then it runs NAME's function ([project.scripts] in
pyproject.toml) from this checkout with the venv's Python. Standard library only, and it parses on Python
3.6, so an older Python gets a one-line refusal rather than a SyntaxError.
"""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROG = "console-script"
MINIMUM = (3, 9)
CHECKOUT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "env/tools-requirements.txt"
MARKER = ".parsl-mpi-stack-tools"  # written last: a venv folder without it is incomplete


class ToolsError(RuntimeError):
    """The tools' venv cannot be made or NAME cannot run; the message is one line."""


class UnknownScript(ToolsError):
    """NAME is no console script of the project (bad input: exit 2)."""


def console_scripts(pyproject: str) -> "dict[str, str]":
    """NAME -> 'module:function' of pyproject.toml's [project.scripts] (the lines `name = "module:function"`)."""
    section = re.search(r"^\[project\.scripts\][ \t]*$(.*?)(?=^\[|\Z)", pyproject, re.MULTILINE | re.DOTALL)
    if section is None:
        return {}
    return dict(re.findall(r'^([\w.-]+)\s*=\s*"([\w.]+:[\w.]+)"', section.group(1), re.MULTILINE))


def venv_folder(cache_home: Path, python: str, version: str, requirements: bytes) -> Path:
    """The venv's folder, keyed by interpreter and requirements: another Python or a new pin gets its own."""
    key = hashlib.sha256(b"\0".join([python.encode(), version.encode(), requirements])).hexdigest()[:16]
    minor = ".".join(version.split()[0].split(".")[:2])
    return cache_home / "parsl-mpi-stack" / "tools-venv" / f"py{minor}-{key}"


def cache_home(environ: "dict[str, str]") -> Path:
    """$XDG_CACHE_HOME, else ~/.cache."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def launch_command(python: Path, target: str, checkout: Path, name: str, args: "list[str]") -> "list[str]":
    """The venv's Python running `module:function` of the checkout, as the console script NAME would."""
    module, function = target.split(":")
    code = (f"import sys; sys.path[0] = {str(checkout)!r}; sys.argv[0] = {name!r}; "
            f"from {module} import {function}; sys.exit({function}())")
    return [str(python), "-c", code, *args]


def _last_line(proc: "subprocess.CompletedProcess[str]") -> str:
    lines = [line.strip() for line in (proc.stderr + "\n" + proc.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def _step(command: "list[str]", folder: Path, what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(str(folder), ignore_errors=True)
        raise ToolsError(f"{what}: {_last_line(proc)}")


def _venv_missing() -> "str | None":
    """Why this Python cannot make a venv with pip in it, or None."""
    for module in ("venv", "ensurepip"):
        try:
            __import__(module)
        except ImportError:
            return (f"{sys.executable} has no {module} module (Debian/Ubuntu: apt install python3-venv; or set "
                    "PYTHON to a Python that has it)")
    return None


def ensure(folder: Path, requirements: Path, name: str = "the tools") -> Path:
    """The venv's Python, made first when the folder holds no complete venv (one maker at a time)."""
    python = folder / "bin" / "python"
    if (folder / MARKER).exists():
        return python
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(str(folder) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / MARKER).exists():
            return python
        missing = _venv_missing()
        if missing:
            raise ToolsError(missing)
        print(f"{PROG}: {name} is not in .venv or on PATH: making, once, a venv of {sys.executable} holding "
              f"{REQUIREMENTS} in {folder}", file=sys.stderr, flush=True)
        shutil.rmtree(str(folder), ignore_errors=True)
        _step([sys.executable, "-m", "venv", str(folder)], folder, "cannot make a venv with " + sys.executable)
        _step([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
               str(requirements)], folder, f"pip could not install {REQUIREMENTS} into {folder}")
        (folder / MARKER).write_text(requirements.read_text())
    return python


def command(name: str, args: "list[str]", checkout: Path = CHECKOUT) -> "list[str]":
    """What runs NAME: checked name, then the venv (made if need be)."""
    if sys.version_info < MINIMUM:
        raise ToolsError("{} is Python {}; the project's tools need {}.{} or newer (set PYTHON to one)".format(
            sys.executable, sys.version.split()[0], *MINIMUM))
    try:
        scripts = console_scripts((checkout / "pyproject.toml").read_text())
        requirements = checkout / REQUIREMENTS
        pins = requirements.read_bytes()
    except OSError as err:
        raise ToolsError(f"cannot read the checkout's {Path(err.filename or '').name}: {err.strerror}") from None
    if name not in scripts:
        raise UnknownScript(f"{name} is not one of the project's console scripts ({', '.join(scripts)})")
    folder = venv_folder(cache_home(dict(os.environ)), os.path.realpath(sys.executable), sys.version, pins)
    return launch_command(ensure(folder, requirements, name), scripts[name], checkout, name, args)


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python3 projectdir/toolsvenv.py NAME [ARGS...]  (scripts/console-script runs it)")
        return 0 if argv else 2
    try:
        cmd = command(argv[0], argv[1:])
    except ToolsError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2 if isinstance(err, UnknownScript) else 1
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
