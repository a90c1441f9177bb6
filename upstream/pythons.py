"""Which Python each part of the project needs, and the one line that refuses an older one.

The login-node tools run on the cluster's system python3, before conda exists: python -m upstream,
python -m spackenv.check, python -m bundle and python -m workflows.environment need 3.9 or newer (RHEL
9's python3). A ship's target needs 3.6 or newer (RHEL 8's; bundle/shipping/remote.py). Parsl, and so the
workflows, need 3.10 (requires-python). The tools import this module before anything newer, so it
parses on any Python (no annotations, no f-strings): an older python3 gets one line naming its version
and the one needed, not a SyntaxError from a module it cannot read.
"""

import sys

LOGIN_TOOLS = (3, 9)


def refusal(found, executable, need=LOGIN_TOOLS):
    # type: (tuple, str, tuple) -> str
    """The one line for Python FOUND (sys.version_info) at EXECUTABLE when the tools need NEED, or "" when
    FOUND will do."""
    if tuple(found[:2]) >= tuple(need):
        return ""
    version = ".".join(str(part) for part in found[:3])
    return ("parsl-mpi-stack: this is Python " + version + " (" + (executable or "python") + "); the login tools"
            " (upstream, spackenv, bundle, workflows.environment) need Python " + ".".join(map(str, need))
            + " or newer")


def require_login_python():
    # type: () -> None
    """Exit 2 (refused: projectdir/cli.py's codes, not imported here) with refusal()'s line when this Python is
    older than LOGIN_TOOLS."""
    line = refusal(sys.version_info, sys.executable)
    if line:
        sys.stderr.write(line + "\n")
        sys.exit(2)
