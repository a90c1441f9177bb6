"""Parsl workflows that launch multi-node MPI runs on Slurm, with verified placement."""
