"""A real multi-node Slurm cluster on one Linux machine: one network, UTS and mount namespace per node."""
