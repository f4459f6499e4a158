"""Jobs as real worker processes: two runs through a one-slot queue to the end, cancelling while queued.

Worker processes import TensorFlow (~3 s each), so one test covers both "a job runs to the end
in its own process" and "one slot makes the second job wait".
"""

import os
import signal
import time

import pytest

from cnnkit.errors import RunError
from cnnkit.runs import jobs
from cnnkit.runs.store import RunStore
from cnnkit.specs import ExperimentSpec
from tests.oracles import wait_reaped, wait_until

TIMEOUT = 120  # generous: the machine is shared, and each worker imports TensorFlow (~3 s)


def tiny_spec(seed: int = 1) -> ExperimentSpec:
    return ExperimentSpec.from_dict({
        "layers": [{"type": "conv2d", "filters": 4}, {"type": "maxpool2d"}, {"type": "flatten"}],
        "dataset": {"name": "mnist", "train_limit": 200, "validation_split": 0.0},
        "training": {"epochs": 1, "batch_size": 64, "seed": seed}})


@pytest.fixture
def store(runs_dir):
    return RunStore(runs_dir)


def test_one_slot_queues_the_second_job_and_both_finish(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    first = jobs.start(store, tiny_spec(1)).run_id
    second = jobs.start(store, tiny_spec(2)).run_id
    seen_queued_behind_running = False
    deadline = time.monotonic() + 2 * TIMEOUT
    while True:
        records = {run_id: store.get(run_id) for run_id in (first, second)}
        statuses = sorted(r.status for r in records.values())
        assert statuses != ["running", "running"], "two jobs trained at once with CNNKIT_MAX_JOBS=1"
        if statuses == ["queued", "running"]:
            waiting = next(r for r in records.values() if r.status == "queued")
            # 1 = next in line: the worker counts the queue while it waits for the slot
            seen_queued_behind_running |= waiting.meta.get("queue_position") == 1
        if not any(r.is_active for r in records.values()):
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)
    assert seen_queued_behind_running
    assert [records[r].status for r in (first, second)] == ["finished", "finished"], (
        store.log_tail(first), store.log_tail(second))
    for run_id, record in records.items():
        assert record.meta["pid"] != os.getpid() and record.meta["queue_position"] is None
        # 200 images in batches of 64: 4 batches, one epoch, all reported into the run folder
        assert [(h["model"], h["epoch"]) for h in store.history(run_id)] == [("cnn", 1)]
        assert store.progress(run_id)["phase"] == "done"
        assert record.has_model("cnn") and (record.path / "predictions_cnn.npz").is_file()
        assert record.epochs_completed == 1 and 0.0 <= record.test_accuracy <= 1.0
        assert record.meta["started"] <= record.meta["finished"]
        wait_reaped(record.meta["pid"])
        assert f"run {run_id}: finished" in store.log_tail(run_id, 50)  # the worker's last word
    # Serial, not overlapping: the later job started training only after the earlier one finished.
    earlier, later = sorted(records.values(), key=lambda r: r.meta["started"])
    assert later.meta["started"] >= earlier.meta["finished"]


def test_cancelling_queued_jobs_never_trains(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    # This test holds the only slot itself, so the workers can only wait in the queue.
    slot = jobs.try_acquire(jobs.slots_dir(store), jobs.max_jobs())
    assert slot is not None
    try:
        by_stop = jobs.start(store, tiny_spec(1)).run_id
        wait_until(lambda: store.get(by_stop).meta.get("queue_position") == 1, "the first job queued", timeout=30)
        by_signal = jobs.start(store, tiny_spec(2)).run_id
        wait_until(lambda: store.get(by_signal).meta.get("queue_position") == 2, "the second job queued", timeout=30)

        jobs.stop(store, by_stop)  # the STOP file
        os.kill(store.get(by_signal).meta["pid"], signal.SIGTERM)  # the worker turns it into STOP
        for run_id in (by_stop, by_signal):
            record = jobs.wait(store, run_id, timeout=30)
            assert record.status == "stopped"
            assert record.meta["reason"] == "Cancelled while waiting in the queue."
            assert record.models == {} and "started" not in record.meta
            assert store.progress(run_id) is None and store.history(run_id) == []
            assert not record.has_model("cnn")
        # the tickets of the cancelled jobs are gone: the queue is empty again
        assert list((jobs.slots_dir(store) / "queue").glob("*.ticket")) == []
    finally:
        slot.release()


def test_a_slot_is_exclusive_until_released(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "2")
    folder = jobs.slots_dir(store)
    a = jobs.try_acquire(folder, jobs.max_jobs())
    b = jobs.try_acquire(folder, jobs.max_jobs())
    assert a is not None and b is not None and a.path != b.path
    assert jobs.try_acquire(folder, 2) is None
    a.release()
    c = jobs.try_acquire(folder, 2)
    assert c is not None and c.path == a.path
    b.release()
    c.release()


@pytest.mark.parametrize("value, expected", [("3", 3), ("0", 1), ("-2", 1), ("many", 1)])
def test_max_jobs_reads_the_environment_safely(monkeypatch, value, expected):
    monkeypatch.setenv("CNNKIT_MAX_JOBS", value)
    assert jobs.max_jobs() == expected


def test_queue_position_ignores_dead_tickets(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "0001.000000-a.ticket").write_text(str(os.getpid()))   # alive, ahead
    (queue / "0002.000000-b.ticket").write_text("999999999")        # dead: removed
    (queue / "0003.000000-c.ticket").write_text("garbage")          # unreadable: skipped
    mine = queue / "0004.000000-me.ticket"
    mine.write_text(str(os.getpid()))
    (queue / "0005.000000-z.ticket").write_text(str(os.getpid()))   # behind: not counted
    assert jobs.queue_position(queue, mine) == 1
    assert not (queue / "0002.000000-b.ticket").exists()


def test_a_ticket_whose_pid_was_reused_does_not_block_the_queue(tmp_path):
    # A worker died; the OS gave its pid to another process (here: this test). The ticket holds
    # the dead worker's start time too, so it is recognised as stale and removed.
    from cnnkit.runs.store import process_started

    queue = tmp_path / "queue"
    queue.mkdir()
    stale = queue / "0001.000000-dead.ticket"
    stale.write_text(f"{os.getpid()} {process_started() - 1}")  # same pid, another start time
    alive = queue / "0002.000000-alive.ticket"
    alive.write_text(jobs.ticket_text())
    mine = queue / "0003.000000-me.ticket"
    assert jobs.read_ticket(alive) == (os.getpid(), process_started())
    assert jobs.queue_position(queue, mine) == 1  # only the live one is ahead
    assert not stale.exists() and alive.exists()


def test_wait_times_out_with_a_run_error(store):
    run_id = store.create(tiny_spec()).run_id  # queued, never launched
    with pytest.raises(RunError, match="still queued"):
        jobs.wait(store, run_id, timeout=0.3, poll=0.1)


# ---------------------------------------------------------------------------
# Per-visitor and server-wide caps (issue 12, item 2)


def test_a_click_flood_starts_only_the_visitors_allowance(store, monkeypatch):
    # One visitor clicked Start 21 times in 1.1 s and got 21 worker processes. Now the count
    # and the create happen under one lock: exactly the allowance starts, the rest is refused.
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    monkeypatch.setenv("CNNKIT_MAX_JOBS_PER_WORKSPACE", "2")
    slot = jobs.try_acquire(jobs.slots_dir(store), 1)  # hold the slot: the jobs wait, never train
    try:
        def click(seed):
            try:
                return jobs.start(store, tiny_spec(seed)).run_id
            except RunError as exc:
                return exc

        with ThreadPoolExecutor(21) as pool:
            outcomes = list(pool.map(click, range(21)))
        started = [o for o in outcomes if isinstance(o, str)]
        refused = [o for o in outcomes if isinstance(o, RunError)]
        assert len(started) == 2 and len(refused) == 19
        assert all("allows 2 at a time per visitor" in str(e) and "Stop one" in str(e) for e in refused)
        assert len(store.list()) == 2  # no run folder was left behind by a refusal
        for run_id in started:
            jobs.stop(store, run_id)
        for run_id in started:
            assert jobs.wait(store, run_id, timeout=30).status == "stopped"
        jobs.start(store, tiny_spec(99))  # the places are free again
        jobs.stop(store, store.list()[0].run_id)
    finally:
        slot.release()


def test_the_servers_queue_has_a_cap_across_workspaces(runs_dir, monkeypatch):
    from cnnkit.runs.workspaces import new_session_key, open_workspace

    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    monkeypatch.setenv("CNNKIT_MAX_QUEUE", "3")
    monkeypatch.delenv("CNNKIT_SLOTS_DIR")  # the default: one slots folder for the whole server
    alice, bob = (open_workspace(runs_dir, "session", new_session_key()) for _ in range(2))
    slot = jobs.try_acquire(jobs.slots_dir(alice), 1)
    try:
        for store in (alice, alice, bob):
            jobs.start(store, tiny_spec())
        with pytest.raises(RunError, match=r"queue is full: 3 trainings .* limit is 3 \(CNNKIT_MAX_QUEUE\)"):
            jobs.start(bob, tiny_spec())
        assert len(bob.list()) == 1
    finally:
        for store in (alice, bob):
            for record in store.list():
                jobs.stop(store, record.run_id)
        for store in (alice, bob):
            for record in store.list():
                jobs.wait(store, record.run_id, timeout=30)
        slot.release()
