"""What a lost block costs, pure: no retry for a task lost with its pool, the cap, the record of each loss."""

from __future__ import annotations

from pathlib import Path

from parsl.app.errors import BashExitFailure
from parsl.executors.high_throughput.errors import ManagerLost

from workflows import report
from workflows.flux import reprovision
from workflows.placement import Rank, Run
from workflows.variants.base import InfrastructureRetries


def test_a_task_lost_with_its_pool_costs_no_retry_until_more_pools_than_the_cap_are_lost():
    handler = InfrastructureRetries(retries=1, max_lost_blocks=2)
    record = {"kwargs": {"stdout": "/r/outputs/run-3.out"}}
    assert handler(BashExitFailure("mpi_run", 1), record) == 1.0  # the run's own failure: as without a handler
    assert handler(ManagerLost(b"m1", "n1"), record) == 0.0
    assert handler(ManagerLost(b"m1", "n1"), record) == 0.0  # the same pool: one lost block
    assert handler(ManagerLost(b"m2", "n3"), record) == 0.0
    assert handler(ManagerLost(b"m3", "n5"), record) == 2.0  # a third pool lost: past the cap, fails now
    assert [host for _, host, _ in handler.lost] == ["n1", "n1", "n3", "n5"]


def run(index: int, hosts: tuple[str, ...]) -> Run:
    return Run(index, f"outputs/run-{index}.out", tuple(Rank(r, 4, h, 0) for r, h in enumerate(hosts)), 1.0, 2.0)


def test_each_lost_block_names_its_resubmitted_runs_and_where_they_ran():
    runs = [run(0, ("n2", "n2", "n3", "n3")), run(1, ("n4", "n4", "n5", "n5"))]
    seen = [{"job": "7", "host": "n1", "at": 10.0, "action": "cancelled"},
            {"job": "8", "host": "n2", "at": 30.0, "action": "cancelled"}]
    # run 0 lost with n1's pool, reported by Parsl after the second loss was seen; run 1 with n2's
    retried = [(35.0, "n1", "/r/outputs/run-0.out"), (40.0, "n2", "/r/outputs/run-1.out")]
    facts = report.lost_block_facts(seen, retried, [], runs, Path("/r"))
    assert [(f["job"], f["resubmitted"]) for f in facts] == [("7", [0]), ("8", [1])]
    assert facts[0]["ran_on"] == {"0": ["n2", "n3"]}
    flux = [reprovision.LostBlock("5", "n1", "its first node n1 does not answer", 12.0, ["/r/outputs/run-1.out"],
                                  "6").as_dict()]
    facts = report.lost_block_facts([], [], flux, runs, Path("/r"))
    assert facts[0]["resubmitted"] == [1] and facts[0]["replacement"] == "6"
    line = report.lost_block_lines(facts, 2.0)[0]
    assert line == ("lost block job 5 (first node n1) at 10.0 s: its first node n1 does not answer; "
                    "runs 1 resubmitted to block job 6")


class Job:
    def __init__(self, task_id: str) -> None:
        import concurrent.futures

        self.task_id, self.future = task_id, concurrent.futures.Future()


def test_a_lost_instance_hands_back_its_unfinished_jobs_and_ignores_their_late_outcomes():
    tracker = reprovision.Tracker()
    done, held = Job("0"), Job("1")
    generation = tracker.submitted(done)
    tracker.submitted(held)
    assert tracker.finished(done, generation)
    done.future.set_result(0)
    tracker.broken(held, generation, OSError("connection reset"))
    assert tracker.unconfirmed(older_than=60) == []  # not yet: the watch has a moment to confirm the loss
    tracker.lose("its first node n1 does not answer")
    assert tracker.next_instance() == [held]
    assert not tracker.finished(held, generation)  # a late outcome of the lost instance: ignored
    assert tracker.lost is None and tracker.generation == 1


def test_a_broken_connection_on_a_live_instance_is_the_jobs_own_failure():
    tracker = reprovision.Tracker()
    job = Job("0")
    generation = tracker.submitted(job)
    error = OSError("unsatisfiable")
    tracker.broken(job, generation, error)
    assert tracker.unconfirmed(older_than=0) == [(job, error)]
