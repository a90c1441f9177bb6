"""Everything Flux, in one place: the executor, its bash-job path, the Parsl seam, the instance, the rank launcher.

- executor: DirectFluxExecutor, Parsl's FluxExecutor with a bash app's command line as the Flux job
  itself (no Python in any rank); Python apps and anything not recognised take Parsl's stock path.
- bashjob: a bash app's call turned, on the submit side, into that job and its outcome (Parsl's semantics).
- parsl_seam: the only module that knows Parsl's private names; imports and checks them at first use,
  and if the installed Parsl changed one, every task takes the stock path (never an ImportError).
- instance: the flux on PATH, its Python bindings, how a block starts an instance (shell_initrc.lua).
- allocation: the broker config that gives an instance the CPUs Slurm allocated (run on the nodes).
- job_events: a monitored run's Flux jobs from each instance's job journal, told to Parsl's database.
- rank_launcher: `flux run` as the rank launcher of mpi --launcher flux.

Nothing is imported here: the rank launcher is imported on compute nodes, and must not pull in Parsl.
"""
