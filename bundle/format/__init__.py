"""The bundle's format, pure: the manifest's records (records.py), its canonical bytes, hashes and diffs
(manifest.py), the checks every manifest passes before anything acts on it (validate.py), and the names a
deployment reserves below its root (reserved.py). Runs on a ship's target (Python 3.6): imports nothing."""
