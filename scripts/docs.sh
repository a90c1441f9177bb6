#!/usr/bin/env bash
# Build the docs (Sphinx + MyST, CLI pages from the argparse parsers): warnings are errors, nitpicky, so a
# broken internal link, anchor or reference fails. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/docs.sh [--out DIR]  (HTML into DIR, default docs/_build/html; needs the docs extra: pip install -e '.[docs]')"
out=docs/_build/html
while (($#)); do
  case "$1" in
    -h|--help) echo "$usage"; exit 0;;
    --out) [ $# -ge 2 ] || { echo "docs.sh: --out needs a directory" >&2; exit 2; }; out="$2"; shift 2;;
    *) echo "docs.sh: unknown argument '$1'" >&2; echo "$usage" >&2; exit 2;;
  esac
done
python=.venv/bin/python; [ -x "$python" ] || python=python3
# -E: every page read again (CLI pages come from the code, which Sphinx does not track)
exec "$python" -m sphinx -E -W --keep-going -n -q -b html docs "$out"
