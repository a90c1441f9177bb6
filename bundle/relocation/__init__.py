"""Relocation: where each store path goes at another root and which prefixes move (layout.py, pure), and
the rewrite of a staged store path's files for them (rewrite.py). Runs on a ship's target (Python 3.6):
imports nothing."""
