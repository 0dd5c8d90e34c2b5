"""The studies' scheduler (benchmarks/jobs.py): which jobs run, and when."""

import threading
import time

from benchmarks import jobs

WAIT = 10  # seconds a job waits for another before it gives up


def test_a_ready_job_runs_while_the_job_it_reads_from_goes_on():
    # A run writes its round 5, then trains on; the control at round 5
    # must not wait for the run to end.
    round_five, control_ended = threading.Event(), threading.Event()

    def ticket() -> bool:
        round_five.set()
        return control_ended.wait(WAIT)  # False: the control waited

    run = jobs.Job("ticket", ticket, recorded=lambda: False)
    control = jobs.Job("control", lambda: control_ended.set() or True,
                       recorded=lambda: False, alongside=(run,),
                       ready=round_five.is_set)
    assert jobs.run_jobs([run, control], 2, poll_seconds=0.01) == []


def test_a_job_waiting_on_ready_leaves_its_process_to_the_next_job():
    other_ran = threading.Event()
    run = jobs.Job("ticket", lambda: other_ran.wait(WAIT),
                   recorded=lambda: False)
    never = jobs.Job("control", lambda: True, recorded=lambda: False,
                     alongside=(run,))
    other = jobs.Job("other", lambda: other_ran.set() or True,
                     recorded=lambda: False)
    assert jobs.run_jobs([run, never, other], 2, poll_seconds=0.01) == []


def test_a_ready_job_goes_before_the_later_jobs():
    # The control of a run's round comes before the next cell: it takes
    # the process that frees first.
    order, later_ran = [], threading.Event()

    def job(name, **kwargs):
        return jobs.Job(name, lambda: order.append(name) or True,
                        recorded=lambda: False, **kwargs)

    run = jobs.Job("ticket", lambda: later_ran.wait(WAIT),
                   recorded=lambda: False)
    later = jobs.Job("later", lambda: order.append("later") or
                     later_ran.set() or True, recorded=lambda: False)
    assert jobs.run_jobs(
        [run, job("control", alongside=(run,), ready=lambda: True), later],
        2,
        poll_seconds=0.01) == []
    assert order == ["control", "later"]


def test_after_a_failure_only_a_ready_job_still_runs():
    ran = []
    failing = jobs.Job("ticket", lambda: False, recorded=lambda: False)
    late = jobs.Job("late", lambda: ran.append("late") or True,
                    recorded=lambda: False, alongside=(failing,))
    there = jobs.Job("there", lambda: ran.append("there") or True,
                     recorded=lambda: False, alongside=(failing,),
                     ready=lambda: True)
    failed = jobs.run_jobs([failing, late, there], 1, poll_seconds=0.01)
    assert failed == ["ticket", "late"]
    assert ran == ["there"]


def test_a_ready_job_still_waits_for_its_after_jobs():
    # A control's next round waits for its previous round (one process
    # at a time holds the control's workdir), ready or not.
    order, round_ten_ready = [], threading.Event()

    def job(name, **kwargs):
        return jobs.Job(name, lambda: order.append(name) or True,
                        recorded=lambda: False, **kwargs)

    def ticket() -> bool:
        round_ten_ready.set()
        return True

    run = jobs.Job("ticket", ticket, recorded=lambda: False)
    def round_five() -> bool:
        round_ten_ready.wait(WAIT)
        time.sleep(0.2)  # round 10 would start now if it did not wait
        order.append("round05")
        return True

    five = jobs.Job("round05", round_five, recorded=lambda: False,
                    alongside=(run,), ready=lambda: True)
    ten = job("round10", after=(five,), alongside=(run,),
              ready=round_ten_ready.is_set)
    assert jobs.run_jobs([run, five, ten], 3, poll_seconds=0.01) == []
    assert order == ["round05", "round10"]


def test_a_recorded_job_reruns_only_for_a_needed_job_reading_its_lost_workdir():
    ran = []

    def job(name, recorded, has_workdir=True, after=()):
        return jobs.Job(name, lambda: ran.append(name) or True,
                        recorded=lambda: recorded,
                        has_workdir=lambda: has_workdir, after=after)

    kept = job("kept", recorded=True)
    lost = job("lost", recorded=True, has_workdir=False)
    idle = job("idle", recorded=True, has_workdir=False)
    jobs.run_jobs([kept, lost, idle, job("a", False, after=(kept,)),
                   job("b", False, after=(lost,)),
                   job("c", True, after=(idle,))], 1)
    assert ran == ["lost", "a", "b"]


def test_rounds_done_reads_each_rounds_metrics(tmp_path):
    (tmp_path / "round_00").mkdir()
    (tmp_path / "round_00" / "metrics.json").write_text("{}")
    (tmp_path / "round_05").mkdir()  # a round still training
    assert jobs.rounds_done(str(tmp_path), [0])
    assert not jobs.rounds_done(str(tmp_path), [0, 5])
    assert jobs.rounds_done(str(tmp_path), [])
