"""The shell snippet a deployment writes (.bundle/env.sh) and the one profile line that sources it."""

from pathlib import Path
from typing import Dict, Optional

from bundle.format.records import Manifest


def snippet(target: Path, manifest: Manifest, digest: str, places: Optional[Dict[str, str]] = None) -> str:
    """The shell lines users source: SPACK_ROOT and Spack's setup-env.sh, else the store paths' bin/."""
    places = places or {}
    lines = [f"# written by python -m bundle redeploy; bundle manifest {digest[:32]}"]
    if manifest.get("spack_root"):
        lines += [f"export SPACK_ROOT={_quote(str(target))}",
                  'if [ -f "$SPACK_ROOT/share/spack/setup-env.sh" ]; then . "$SPACK_ROOT/share/spack/setup-env.sh"; fi']
    bins = [str(target / places.get(sp["key"], sp["key"]) / "bin") for sp in manifest["paths"]
            if sp.get("kind") is None and any(e["path"] == "bin" and e["type"] == "dir" for e in sp["files"])]
    if bins:
        lines.append(f"export PATH={_quote(':'.join(bins))}:\"$PATH\"")
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def add_to_profile(snippet_path: Path, profile: Path) -> bool:
    """Append one `source` line to PROFILE unless it is already there; True when written."""
    line = f". {_quote(str(snippet_path))}  # bundle environment\n"
    text = profile.read_text() if profile.exists() else ""
    if line in text:
        return False
    with open(profile, "a") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + line)
    return True
