-- The job shell's initrc for the flux variant's instance (flux start -Sconf.shell_initrc=this file).
-- Each task of a job is bound to its own core: an MPI rank per CPU, as under mpirun --bind-to core.
-- Flux's default binds every task to all of the job's cores on the node.
shell.options["cpu-affinity"] = "per-task"
-- Then Flux's own initrc (plugins, lua.d), whose path the launch command exports.
source(os.getenv("WORKFLOWS_FLUX_INITRC"))
