"""The warm worker (runs/warm.py): a job handed to a spare that imported TensorFlow before it had
one trains exactly as in a fresh worker, writes into its own run folder, and is replaced when it
ends; a job that must queue, a job that wants more threads per op, or a spare of another
environment, is not given to it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cnnkit import sysinfo
from cnnkit.lab.bench.starting import settled
from cnnkit.runs import jobs, threads, warm
from cnnkit.runs.store import RunStore
from cnnkit.specs import ExperimentSpec
from tests.oracles import wait_reaped, wait_until

TIMEOUT = 180  # two workers import TensorFlow on a shared machine


def tiny_spec() -> ExperimentSpec:
    return ExperimentSpec.from_dict({
        "layers": [{"type": "conv2d", "filters": 4}, {"type": "maxpool2d"}, {"type": "flatten"},
                   {"type": "dense", "units": 16}],
        "dataset": {"name": "mnist", "train_limit": 300, "test_limit": 100, "validation_split": 0.0},
        "training": {"epochs": 2, "batch_size": 64, "seed": 7}})


@pytest.fixture
def store(runs_dir, monkeypatch):
    monkeypatch.delenv("CNNKIT_OP_THREADS", raising=False)
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)  # the rule of a 2-core machine, whatever this one has
    yield RunStore(runs_dir)
    spare = warm.idle_spare()
    warm.end_spare()
    if spare is not None:
        spare.process.kill()
        spare.process.wait(timeout=30)


def trained(store: RunStore, run_id: str) -> tuple[list, np.ndarray]:
    record = jobs.wait(store, run_id, timeout=TIMEOUT)
    assert record.status == "finished", (record.problem, store.log_tail(run_id))
    losses = [(e["model"], e["epoch"], e["loss"], e["accuracy"]) for e in store.history(run_id)]
    with np.load(store.path(run_id) / "predictions_cnn.npz") as predictions:
        return losses, predictions["probs"]


def test_a_job_in_the_warm_worker_trains_exactly_as_in_a_fresh_one_and_the_spare_is_replaced(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_WARM_WORKER", "off")
    cold = jobs.start(store, tiny_spec()).run_id
    cold_losses, cold_probs = trained(store, cold)
    assert store.get(cold).meta["warm_worker"] is False
    wait_reaped(store.get(cold).meta["pid"])  # still off when its end asks for a spare

    monkeypatch.setenv("CNNKIT_WARM_WORKER", "on")
    jobs.prepare_spare(store, dataset="mnist")
    spare = warm.idle_spare()
    assert spare is not None
    settled(spare.pid, timeout=TIMEOUT)  # it waited for a quiet machine, then warmed up, and now waits for a job
    run_id = jobs.start(store, tiny_spec()).run_id
    record = store.get(run_id)
    assert record.meta["warm_worker"] is True and record.meta["pid"] == spare.pid
    warm_losses, warm_probs = trained(store, run_id)
    # the oracle: the fresh worker's run of the same spec, bit for bit (the seed decides everything)
    assert warm_losses == cold_losses and len(warm_losses) == 2
    assert store.get(cold).meta["op_threads"] == store.get(run_id).meta["op_threads"] == 1  # a light step
    np.testing.assert_array_equal(warm_probs, cold_probs)
    wait_reaped(spare.pid)  # its last line is printed after run.json reads "finished"
    assert f"run {run_id}: finished" in (store.path(run_id) / "log.txt").read_text()  # its output, in its log
    # when the job ended, a new spare was started for the next one
    replacement = wait_until(warm.idle_spare, "a new spare after the job", timeout=30)
    assert replacement.pid != spare.pid and replacement.dataset == "mnist"
    warm.end_spare()  # the server lets go of it while it is still importing TensorFlow
    assert replacement.process.wait(timeout=20) == 0


def test_a_job_that_would_queue_goes_to_a_fresh_worker(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_WARM_WORKER", "on")
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    environment = jobs.spare_environment(store)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    warm._spare = warm.Spare(sleeper, environment, "mnist")  # a stand-in spare: it only reads its stdin
    held = jobs.try_acquire(jobs.slots_dir(store), 1)  # another job trains
    try:
        run_id = jobs.start(store, tiny_spec()).run_id
        assert store.get(run_id).meta["warm_worker"] is False
        assert warm.idle_spare() is not None and warm.idle_spare().pid == sleeper.pid  # kept for later
        wait_until(lambda: store.get(run_id).meta.get("queue_position") == 1, "the job waiting in the queue", 60)
        jobs.stop(store, run_id)
        assert jobs.wait(store, run_id, timeout=60).status == "stopped"
    finally:
        held.release()
        warm.end_spare()
        sleeper.wait(timeout=10)
    assert sleeper.returncode == 0  # the end of its stdin ended it


def test_a_job_that_wants_every_core_per_op_goes_to_a_fresh_worker_that_has_them(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_WARM_WORKER", "on")
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    warm._spare = warm.Spare(sleeper, jobs.spare_environment(store), "mnist")  # a light job's count: 1
    heavy = ExperimentSpec.from_dict({  # 26·26·256·(9 + 10) multiply-adds × 128 images: 421 M a step
        "layers": [{"type": "conv2d", "filters": 256, "kernel_size": 3}, {"type": "flatten"}],
        "dataset": {"name": "mnist", "train_limit": 128, "test_limit": 64, "validation_split": 0.0},
        "training": {"epochs": 1, "batch_size": 128, "seed": 7}})
    try:
        run_id = jobs.start(store, heavy).run_id
        record = jobs.wait(store, run_id, timeout=TIMEOUT)
        assert record.status == "finished", (record.problem, store.log_tail(run_id))
        assert record.meta["warm_worker"] is False and record.meta["op_threads"] == threads.EVERY_CORE
        assert warm.idle_spare() is not None and warm.idle_spare().pid == sleeper.pid  # kept for a light job
    finally:
        warm.end_spare()
        sleeper.wait(timeout=10)


def test_a_spare_serves_only_its_own_environment(store, monkeypatch):
    monkeypatch.setenv("CNNKIT_WARM_WORKER", "on")
    environment = jobs.worker_environment(store)
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    warm._spare = warm.Spare(sleeper, environment, "mnist")
    try:
        assert warm.take({**environment, "CNNKIT_DATA_DIR": "/elsewhere"}) is None
        assert warm.take(environment) is not None and warm.idle_spare() is None  # taken: nobody else gets it
    finally:
        sleeper.stdin.close()
        sleeper.wait(timeout=10)


@pytest.mark.parametrize("mode, engine, memory, expected", [
    ("auto", "local", 24.0, True), ("auto", "local", 1.0, False), ("auto", "local", None, False),
    ("on", "local", 1.0, True), ("off", "local", 24.0, False), ("on", "ray", 24.0, False),
])
def test_when_warm_workers_are_on(monkeypatch, mode, engine, memory, expected):
    monkeypatch.setenv("CNNKIT_WARM_WORKER", mode)
    monkeypatch.setenv("CNNKIT_ENGINE", engine)
    monkeypatch.setattr(warm, "memory_gib", lambda: memory)
    assert warm.enabled() is expected


@pytest.mark.parametrize("loaded, teardown", [(["tensorflow"], False), (["tensorflow", "ray"], True), ([], True)])
def test_the_worker_ends_without_the_interpreters_teardown_unless_ray_needs_it(loaded, teardown):
    # stand-in modules: what matters is only which names are loaded
    code = ("import atexit, sys, types\n"
            f"for name in {loaded!r}: sys.modules[name] = types.ModuleType(name)\n"
            "atexit.register(lambda: print('teardown', flush=True))\n"
            "from cnnkit.worker import exit_now\n"
            "print('result', end='')\n"
            "exit_now(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == ("result" + ("teardown\n" if teardown else ""))  # flushed first, either way


# -- waiting for a quiet machine before the warm-up (warm.wait_for_quiet) ----------------------


def test_the_machines_busy_share_from_two_readings_of_proc_stat():
    # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    before = sysinfo.machine_ticks("cpu  100 0 50 800 50 0 0 0 0 0")
    after = sysinfo.machine_ticks("cpu  130 0 60 950 60 0 0 0 0 0")
    assert before == (150, 1000) and after == (190, 1200)
    assert sysinfo.busy_fraction(before, after) == pytest.approx(40 / 200)
    assert sysinfo.machine_ticks("not a stat line") == (0, 0) and sysinfo.busy_fraction((0, 0), (0, 0)) == 0.0


class FakeMachine:
    """/proc/stat readings of a machine whose busy share per reading is scripted; sleeps are counted."""

    def __init__(self, busy_shares: list[float], job_at_check: int | None = None):
        self.busy_shares, self.job_at_check = list(busy_shares), job_at_check
        self.ticks, self.sleeps, self.checks = (0, 0), 0, 0

    def read_ticks(self):
        share = self.busy_shares.pop(0) if self.busy_shares else 1.0
        self.ticks = (self.ticks[0] + round(100 * share), self.ticks[1] + 100)
        return self.ticks

    def sleep(self, seconds):
        self.sleeps += 1

    def job_arrived(self):
        self.checks += 1
        return self.job_at_check is not None and self.checks >= self.job_at_check

    def wait(self, **options):
        return warm.wait_for_quiet(self.job_arrived, read_ticks=self.read_ticks, sleep=self.sleep, sample=0.25,
                                   seconds=1.0, max_wait=5.0, **options)


def test_a_quiet_machine_is_waited_for_one_second_in_a_row():
    machine = FakeMachine([0.0] + [0.1] * 10)  # the first reading is the baseline
    assert machine.wait() == "quiet" and machine.sleeps == 4  # 4 × 0.25 s under a quarter busy


def test_a_busy_reading_starts_the_quiet_second_again():
    machine = FakeMachine([0.0, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1])
    assert machine.wait() == "quiet" and machine.sleeps == 3 + 4


def test_a_machine_that_stays_busy_is_waited_for_at_most_max_wait():
    machine = FakeMachine([])  # every reading: fully busy
    assert machine.wait() == "waited" and machine.sleeps == 20  # 5 s / 0.25 s


def test_a_job_ends_the_wait_at_once():
    machine = FakeMachine([], job_at_check=3)
    assert machine.wait() == "job" and machine.sleeps == 2
