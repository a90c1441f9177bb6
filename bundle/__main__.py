"""python -m bundle: the CLI (bundle/cli.py), after refusing a Python older than 3.9 in one line.

It runs on the cluster's system python3, so this module parses on any Python and imports the CLI only
once the version is known to do.
"""

import sys

from upstream.pythons import require_login_python


def main(argv=None):
    # type: (list[str] | None) -> int
    require_login_python()
    from bundle.cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
