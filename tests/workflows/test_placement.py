"""The verifier accepts a correct placement and rejects each kind of crafted bad output."""

from workflows import placement, report, verify

CPUS = {"n1": 2, "n2": 2, "n3": 2, "n4": 2}


def output(nodes, start, end, *, size=None, drop=(), cpu_of=lambda local: local):
    ranks = [(node, local) for node in nodes for local in range(2)]
    size = size or len(ranks)
    lines = [f"# start {start}"]
    for rank, (node, local) in enumerate(ranks):
        if rank not in drop:
            lines.append(f"Hello world from processor {node}, rank {rank} out of {size} processors, "
                         f"cpu {cpu_of(local)}")
    return "\n".join(lines + [f"# end {end}"]) + "\n"


def runs(*texts):
    return [placement.parse(i, f"outputs/run-{i}.out", t) for i, t in enumerate(texts)]


def check(*texts, nodes_per_run=2):
    return verify.verify(runs(*texts), repeats=len(texts), nodes_per_run=nodes_per_run, cpus_by_node=CPUS)


def test_a_correct_placement_verifies():
    good = (output(["n1", "n2"], 0, 1), output(["n3", "n4"], 0.1, 1.1), output(["n1", "n2"], 1.2, 2))
    assert check(*good) == []
    assert report.max_concurrency(runs(*good)) == 2


def test_parse_reads_ranks_and_stamps():
    run = runs(output(["n3", "n4"], 5.5, 7.25))[0]
    assert (run.start, run.end, run.nodes) == (5.5, 7.25, ["n3", "n4"])
    assert placement.Rank(3, 4, "n4", 1) in run.ranks


def test_a_missing_rank_is_reported():
    problems = check(output(["n1", "n2"], 0, 1, drop={3}))
    assert "run 0: ranks [3] of 4 did not answer" in problems
    assert "run 0: n2 ran 1 ranks, Slurm gave it 2 CPUs" in problems


def test_a_duplicated_cpu_is_reported():
    assert check(output(["n1", "n2"], 0, 1, cpu_of=lambda local: 0)) == [
        "run 0: n1 CPU 0 answered more than once", "run 0: n2 CPU 0 answered more than once"]


def test_a_run_on_too_few_nodes_is_reported():
    problems = check(output(["n1"], 0, 1))
    assert problems == ["run 0: ran on 1 nodes ['n1'], expected 2"]


def test_overlapping_runs_sharing_a_node_are_reported():
    problems = check(output(["n1", "n2"], 0, 2), output(["n2", "n3"], 1, 3))
    assert problems == ["runs 0 and 1 overlapped in time on nodes ['n2']"]
    assert check(output(["n1", "n2"], 0, 1), output(["n2", "n3"], 1.5, 3)) == []


def test_a_run_that_never_answered_is_reported():
    assert check(output(["n1", "n2"], 0, 1), "") == ["run 1: no rank answered"]


def test_static_block_count_must_stay_constant():
    assert verify.block_count_problems([(0, 0), (1, 4), (2, 4)], 4) == []
    assert verify.block_count_problems([(0, 4), (1, 3), (2, 4)], 4) == [
        "static: block count left 4 during the run (saw [3])"]
    assert verify.block_count_problems([(0, 2)], 4) == ["static: squeue never showed 4 blocks (saw [2])"]


def test_a_retried_run_is_judged_by_its_last_attempt():
    first = output(["n3", "n4"], 0, 1).replace("# start 0", "# start 0 n3-101").replace("# end 1\n", "")
    second = output(["n1", "n2"], 2, 3).replace("# start 2", "# start 2 n1-202").replace("# end 3", "# end 3 n1-202")
    run = runs(first + second)[0]
    assert (run.start, run.end, run.nodes) == (2, 3, ["n1", "n2"])
    assert run.failed_attempts == (("n3", "n4"),)
    assert verify.verify([run], repeats=1, nodes_per_run=2, cpus_by_node=CPUS) == []


def test_flux_ranks_stamping_one_attempt_are_one_attempt():
    stamps = "".join(f"# start {t} 77\n" for t in (1.0, 1.1, 1.2, 1.3))
    text = stamps + output(["n1", "n2"], 1.0, 2.0).split("\n", 1)[1]
    run = runs(text)[0]
    assert run.failed_attempts == () and run.start == 1.0 and len(run.ranks) == 4


def test_a_retry_note_names_the_failed_attempt_s_nodes_or_says_it_had_none():
    from workflows.report import retry_note

    assert retry_note(["n1", "n2"]) == "retried after an attempt on n1,n2"
    assert retry_note([]) == "retried after an attempt that failed before any rank answered"
