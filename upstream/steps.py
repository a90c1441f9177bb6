"""Running a build as named steps: one log per step, progress on stderr, one line when a step fails."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .errors import UpstreamError

PERCENT = re.compile(rb"\[\s*(\d+)%\]")  # cmake's "[ 45%] Building ..."


class StepFailed(UpstreamError, RuntimeError):
    """A build step failed; the message names the step and its log."""


@dataclasses.dataclass
class Step:
    name: str
    command: Sequence[str] | None = None  # a command to run, or
    action: Callable[[], None] | None = None  # a Python action
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    expected_lines: int | None = None  # for progress: about how many log lines the step writes


def _progress(log: Path, step: Step, label: str, started: float, done: threading.Event, tty: bool) -> None:
    last = ""
    while not done.wait(1.0 if tty else 30.0):
        try:
            data = log.read_bytes()
        except OSError:
            data = b""
        percents = PERCENT.findall(data[-4096:])
        lines = data.count(b"\n")
        if percents:
            how_far = f"{int(percents[-1])}%"
        elif step.expected_lines:
            how_far = f"~{min(99, 100 * lines // step.expected_lines)}%"
        else:
            how_far = f"{lines} log lines"
        line = f"{label} {how_far}, {time.monotonic() - started:.0f} s"
        if line != last:
            print(("\r" if tty else "") + line + ("" if tty else "\n"), end="", file=sys.stderr, flush=True)
            last = line


def run(steps: Sequence[Step], logs: Path, *, title: str) -> None:
    """Run the steps in order; raise StepFailed naming the first one that fails and its log."""
    logs.mkdir(parents=True, exist_ok=True)
    tty = sys.stderr.isatty()
    total = time.monotonic()
    for i, step in enumerate(steps, 1):
        label = f"{title} [{i}/{len(steps)}] {step.name}"
        slug = re.sub(r"[^\w.-]+", "-", step.name)
        log = logs / f"{i:02d}-{slug}.log"
        print(f"{label} (log: {log})", file=sys.stderr, flush=True)
        started = time.monotonic()
        done = threading.Event()
        ticker = threading.Thread(target=_progress, args=(log, step, label, started, done, tty), daemon=True)
        ticker.start()
        try:
            if step.action is not None:
                with log.open("w") as out:
                    out.write(f"# {step.name}\n")
                step.action()
            else:
                assert step.command is not None
                with log.open("wb") as out:
                    out.write(f"# {' '.join(step.command)}\n".encode())
                    out.flush()
                    rc = subprocess.run(step.command, cwd=step.cwd, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env={**os.environ, **(step.env or {})}).returncode
                if rc != 0:
                    raise StepFailed(f"{title}: step '{step.name}' failed (exit {rc}); see {log}")
        except OSError as err:
            raise StepFailed(f"{title}: step '{step.name}' failed ({err}); see {log}") from None
        except StepFailed:
            raise
        except Exception as err:  # an action's own error, with its one line
            raise StepFailed(f"{title}: step '{step.name}' failed: {err}; see {log}") from None
        finally:
            done.set()
            ticker.join()
            if tty:
                print("\r\033[K", end="", file=sys.stderr)
        print(f"{label} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"{title}: built in {time.monotonic() - total:.0f} s", file=sys.stderr, flush=True)
