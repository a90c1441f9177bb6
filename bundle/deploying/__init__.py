"""Deploying a bundle at a target, one module per step: where it may go (target.py), the lock (lock.py),
the plan (plan.py), staging (stage.py), the swap and prune (swap.py), the record (record.py, snippet.py);
what the deployment keeps about itself (state.py) and its verify (verify.py); redeploy.py runs the steps.
Runs on a ship's target (Python 3.6): imports nothing."""
