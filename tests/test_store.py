"""The run store: folders round trip, dead processes show as interrupted, damage is listed, ids are safe."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnkit.errors import RunError, WorkspaceError
from cnnkit.presets import PRESETS
from cnnkit.runs.store import (
    RunStore,
    RunWriter,
    append_jsonl,
    atomic_write_json,
    is_temporary,
    pid_alive,
    read_json,
    read_jsonl,
    remove_temporary_files,
)

SPEC = PRESETS["chollet-cnn"].experiment()


@pytest.fixture
def store(runs_dir):
    return RunStore(runs_dir)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def finish(store: RunStore, run_id: str) -> None:
    """Mark a run finished the way training does: the model file first, then the status."""
    (store.path(run_id) / "model.keras").write_bytes(b"stand-in")
    store.update(run_id, status="finished")


def test_create_get_list_rename_delete_round_trip(store):
    assert store.list() == []
    first = store.create(SPEC, name="first")
    second = store.create(SPEC.updated({"dataset.name": "fashion_mnist"}))
    assert first.run_id != second.run_id
    got = store.get(first.run_id)
    assert got.spec == SPEC
    assert got.status == "queued"  # just created: no process yet, and not yet "interrupted"
    assert got.name == "first" and second.name == "chollet-cnn"
    assert json.loads((got.path / "spec.json").read_text()) == SPEC.to_dict()
    # newest first
    assert [r.run_id for r in store.list()] == [second.run_id, first.run_id]
    assert store.get(second.run_id).dataset == "fashion_mnist"

    store.rename(first.run_id, "  renamed  ")
    assert store.get(first.run_id).name == "renamed"
    with pytest.raises(RunError):
        store.rename(first.run_id, "   ")
    with pytest.raises(RunError):
        store.rename(first.run_id, "x" * 121)

    finish(store, first.run_id)
    assert store.latest() is not None and store.latest().run_id == first.run_id
    assert store.latest(dataset="fashion_mnist") is None
    store.delete(first.run_id)
    assert not first.path.exists()
    assert [r.run_id for r in store.list()] == [second.run_id]
    with pytest.raises(RunError, match="does not exist"):
        store.get(first.run_id)
    with pytest.raises(RunError, match="does not exist"):
        store.delete(first.run_id)


def test_an_active_run_cannot_be_deleted(store):
    run_id = store.create(SPEC).run_id
    store.update(run_id, status="running", pid=os.getpid())  # this process: alive
    with pytest.raises(RunError, match="still running"):
        store.delete(run_id)
    assert store.get(run_id).status == "running"


def test_running_with_a_dead_pid_is_interrupted(store):
    run_id = store.create(SPEC).run_id
    store.update(run_id, status="running", pid=dead_pid())
    record = store.get(run_id)
    assert record.status == "interrupted"
    assert "ended without finishing" in record.problem
    store.delete(run_id)  # an interrupted run is not active: deletable
    assert store.list() == []


def test_queued_long_ago_without_a_process_is_interrupted(store):
    run_id = store.create(SPEC).run_id
    store.update(run_id, created=time.time() - 3600)
    assert store.get(run_id).status == "interrupted"


def test_finished_without_its_model_is_damaged(store):
    run_id = store.create(SPEC).run_id
    store.update(run_id, status="finished")
    record = store.get(run_id)
    assert record.status == "damaged" and "model.keras is missing" in record.problem


@pytest.mark.parametrize("damage, problem", [
    (lambda d: (d / "run.json").write_text("{not json"), "run.json is unreadable"),
    (lambda d: (d / "run.json").write_text("[1, 2]"), "not a JSON object"),
    (lambda d: (d / "run.json").unlink(), "run.json is missing"),
    (lambda d: atomic_write_json(d / "run.json", {**read_json(d / "run.json"),
                                                  "spec": {"layers": [{"type": "conv2d", "filters": -1}]}}),
     "layers[0].filters"),
    (lambda d: atomic_write_json(d / "run.json", {**read_json(d / "run.json"), "status": "exploded"}),
     "unknown status 'exploded'"),
], ids=["bad-json", "not-an-object", "missing-run-json", "invalid-spec", "unknown-status"])
def test_damaged_folders_are_listed_with_a_reason_and_deletable(store, damage, problem):
    good = store.create(SPEC).run_id
    bad = store.create(SPEC).run_id
    damage(store.path(bad))
    listed = {r.run_id: r for r in store.list()}
    assert set(listed) == {good, bad}
    assert listed[bad].status == "damaged"
    assert problem in listed[bad].problem
    assert listed[good].status == "queued"
    store.delete(bad)
    assert [r.run_id for r in store.list()] == [good]


def test_listing_skips_hidden_folders_and_stray_files(store, runs_dir):
    store.create(SPEC)
    (runs_dir / ".slots").mkdir()
    (runs_dir / "notes.txt").write_text("hello")
    assert len(store.list()) == 1


@pytest.mark.parametrize("run_id", ["../x", "..", "a/b", "/etc", "", ".hidden", "x" * 101, "a\x00b",
                                    "..%2Fx", None, 7])
def test_path_traversal_and_bad_ids_are_refused(store, run_id):
    with pytest.raises(RunError, match="not a valid run id"):
        store.path(run_id)
    with pytest.raises(RunError):
        store.get(run_id)
    with pytest.raises(RunError):
        store.delete(run_id)


def test_delete_refuses_traversal_and_leaves_the_outside_alone(store, tmp_path):
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "run.json").write_text("{}")
    with pytest.raises(RunError):
        store.delete("../x")
    assert (victim / "run.json").exists()


def test_writer_history_batches_progress_and_stop(store):
    run_id = store.create(SPEC).run_id
    writer = RunWriter(store, run_id)
    writer.append_epoch({"model": "cnn", "epoch": 1, "loss": 0.5})
    writer.append_epoch({"model": "cnn", "epoch": 2, "loss": 0.25})
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2]
    # a second writer (a resumed process) continues the same history
    RunWriter(store, run_id).append_epoch({"model": "baseline", "epoch": 1, "loss": 1.0})
    assert [(h["model"], h["epoch"]) for h in store.history(run_id)] == [("cnn", 1), ("cnn", 2),
                                                                          ("baseline", 1)]
    writer.set_model_result("cnn", params=10)
    writer.set_model_result("cnn", test_accuracy=0.5)
    writer.set_model_result("baseline", params=3)
    assert store.get(run_id).models == {"cnn": {"params": 10, "test_accuracy": 0.5}, "baseline": {"params": 3}}
    writer.append_batch({"batch": 1, "loss": float("nan")})
    with open(store.path(run_id) / "batches.jsonl", "a") as handle:
        handle.write('{"batch": 2, "lo')  # a torn last line from a killed writer
    batches = store.batches(run_id)
    assert len(batches) == 1 and batches[0]["batch"] == 1
    writer.write_progress({"phase": "training", "batch": 3})
    progress = store.progress(run_id)
    assert progress["batch"] == 3 and progress["updated"] <= time.time()
    assert not writer.stop_requested()
    store.request_stop(run_id)
    assert writer.stop_requested()


def test_atomic_json_refuses_nan_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    with pytest.raises(ValueError):
        atomic_write_json(path, {"x": float("nan")})
    assert read_json(path) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_numpy_values_are_stored_as_plain_json(tmp_path):
    import numpy as np

    path = tmp_path / "a.json"
    atomic_write_json(path, {"acc": np.float32(0.5), "counts": np.arange(3), "n": np.int64(4)})
    assert read_json(path) == {"acc": 0.5, "counts": [0, 1, 2], "n": 4}
    append_jsonl(tmp_path / "b.jsonl", {"v": np.float64(1.5)})
    assert read_jsonl(tmp_path / "b.jsonl") == [{"v": 1.5}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(None) and not pid_alive(0) and not pid_alive(-5)
    # a finished child nobody reaped (a zombie) counts as dead
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{zombie.pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    assert not pid_alive(zombie.pid)
    zombie.wait()


def test_a_reused_pid_is_not_the_recorded_process():
    from cnnkit.runs.store import process_started, this_process

    started = process_started()
    boot_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])  # field 22, by hand
    assert started == boot_ticks and this_process() == {"pid": os.getpid(), "pid_started": started}
    assert pid_alive(os.getpid(), started)
    assert not pid_alive(os.getpid(), started + 1)  # same pid, another process: not ours
    assert process_started(dead_pid()) is None


def test_a_running_run_whose_pid_was_reused_lists_as_interrupted(store):
    from cnnkit.runs.store import process_started

    run_id = store.create(SPEC).run_id
    store.update(run_id, status="running", pid=os.getpid(), pid_started=process_started())
    assert store.get(run_id).status == "running"
    # the worker died, and the OS gave its pid to a new process (here: this one, a tick later)
    store.update(run_id, pid_started=process_started() + 1)
    record = store.get(run_id)
    assert record.status == "interrupted" and "killed or crashed" in record.problem
    # a run.json from before pid_started existed still works on the pid alone
    store.update(run_id, pid_started=None)
    assert store.get(run_id).status == "running"


def test_log_tail(store):
    run_id = store.create(SPEC).run_id
    assert store.log_tail(run_id) == ""
    (store.path(run_id) / "log.txt").write_text("\n".join(f"line {i}" for i in range(30)))
    assert store.log_tail(run_id, lines=2) == "line 28\nline 29"


# ---------------------------------------------------------------------------
# A kill while a file is written (issue 12, item 5): real SIGKILLs at 12 moments

# The file is rewritten in a loop, so each kill lands inside some write whatever its size; 50,000
# rows (was 200,000) take ~0.1 s a write, and the 12 moments 0-0.14 s apart fall at different
# points of one or two writes.
ROWS = 50_000
WRITER = f"""
import sys, numpy as np
from cnnkit.runs.store import atomic_write_npz
path, mode = sys.argv[1], sys.argv[2]
probs = np.random.default_rng(0).random(({ROWS}, 10), dtype=np.float32)  # ~2 MB, incompressible: ~0.1 s a write
i = 0
while True:
    i += 1
    arrays = dict(probs=probs, y_true=np.full(len(probs), i % 10), test_indices=np.arange(len(probs)))
    if mode == "atomic":
        atomic_write_npz(path, **arrays)
    else:
        np.savez_compressed(path, **arrays)  # how predictions were written before
    if i == 1:
        print("written", flush=True)
"""


def kill_writer_repeatedly(tmp_path, mode: str, moments=12) -> list[str]:
    """Start a process that rewrites predictions.npz in a loop, SIGKILL it at `moments`
    different times, and say after each kill whether the file still loads whole."""
    from cnnkit.views.analysis import load_predictions

    outcomes = []
    for k in range(moments):
        run_dir = tmp_path / f"{mode}-{k}"
        run_dir.mkdir()
        path = run_dir / "predictions_cnn.npz"
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE,
                                 cwd=Path(__file__).resolve().parent.parent)
        assert child.stdout.readline().strip() == b"written"  # one whole file is in place
        time.sleep(0.013 * k)  # a different moment of the next write each time
        child.kill()
        child.wait()
        try:
            predictions = load_predictions(run_dir)
            outcomes.append("whole" if len(predictions.y_true) == ROWS else "short")
        except Exception as exc:  # what Inspect crashed on before: EOFError, BadZipFile, ValueError
            outcomes.append(type(exc).__name__)
        assert not [p.name for p in run_dir.iterdir() if p.name != path.name and mode != "atomic"]
    return outcomes


@pytest.mark.slow
def test_a_sigkill_mid_write_leaves_the_old_predictions_or_the_new_ones(tmp_path):
    atomic = kill_writer_repeatedly(tmp_path, "atomic")
    assert atomic == ["whole"] * len(atomic)
    # The same kills against the old direct write break the file (the attack reproduced).
    direct = kill_writer_repeatedly(tmp_path, "direct")
    assert sum(outcome != "whole" for outcome in direct) >= len(direct) // 2, direct
    # What an atomic writer's kill leaves beside the file is a temporary one, which the store
    # removes as soon as it sees the run interrupted.
    leftovers = [p for k in range(len(atomic)) for p in (tmp_path / f"atomic-{k}").iterdir() if is_temporary(p)]
    for folder in {p.parent for p in leftovers}:
        assert remove_temporary_files(folder) and not [p for p in folder.iterdir() if is_temporary(p)]
    print(f"\nRELIABILITY_TALLY writes {{'atomic': {atomic}, 'direct': {direct}}}")


def test_an_interrupted_run_loses_its_half_written_files_and_keeps_the_rest(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create(SPEC).run_id
    store.update(run_id, status="running", pid=dead_pid())
    folder = store.path(run_id)
    (folder / "model.keras.tmp-123.keras").write_bytes(b"half")
    (folder / ".predictions_cnn.npz.abc.tmp").write_bytes(b"half")
    assert store.get(run_id).status == "interrupted"
    assert sorted(p.name for p in folder.iterdir() if is_temporary(p)) == []
    assert (folder / "run.json").is_file()


def test_run_ids_and_keys_refuse_a_trailing_newline_and_long_ids_are_cut_in_messages(tmp_path):
    from cnnkit.runs.workspaces import check_session_key, new_session_key

    store = RunStore(tmp_path)
    with pytest.raises(RunError, match="not a valid run id"):
        store.path("abc\n")  # "$" in a pattern accepted it
    with pytest.raises(WorkspaceError):
        check_session_key(new_session_key() + "\n")
    with pytest.raises(RunError) as caught:
        store.path("x" * 5000 + "/")
    assert len(str(caught.value)) < 100 and "x" * 50 in str(caught.value)


def test_a_bad_stored_name_is_shown_escaped_and_its_run_can_still_be_deleted(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create(SPEC).run_id
    store.update(run_id, status="stopped", name="\ud800![p](http://attacker/p.png)\n")  # behind the app
    record = store.get(run_id)
    assert record.name.startswith("'\\ud800") and "\n" not in record.name
    record.name.encode("utf-8")  # drawable: no lone surrogate left
    for bad in ("\ud800", "two\nlines", ""):
        with pytest.raises(RunError, match="new name"):
            store.rename(run_id, bad)
    with pytest.raises(RunError, match="run name contains a lone surrogate"):
        store.create(SPEC, name="\udfff")
    store.delete(run_id)
    assert store.list() == []


def test_a_json_file_nested_too_deeply_is_a_value_error(tmp_path):
    path = tmp_path / "draft.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(path)


def test_a_process_reaped_between_the_two_checks_is_not_alive(monkeypatch):
    # kill(0) succeeds on a zombie; if its parent reaps it before /proc/<pid>/stat is read, the
    # entry is gone. That read as alive, and a SIGKILLed run stayed "running" (seen once in CI).
    from cnnkit.runs import store as store_module

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # it has exited; nobody has reaped it yet
    monkeypatch.setattr(store_module, "proc_stat_fields", lambda pid: None)  # reaped just then
    assert not store_module.pid_alive(zombie.pid)
    zombie.wait()


def test_scan_reads_newest_first_as_far_as_asked_in_lists_order(store, runs_dir, monkeypatch):
    # Ids in three seconds (a run id starts with its second), two runs in the middle one; the
    # oracle is list(), which reads them all.
    made = []
    for second, created in (("20260101-000001", 1.0), ("20260101-000002", 2.0), ("20260101-000002", 2.5),
                            ("20260101-000003", 3.0)):
        run_id = store.create(SPEC).run_id
        renamed = f"{second}-{run_id[16:]}"
        os.rename(runs_dir / run_id, runs_dir / renamed)
        meta = json.loads((runs_dir / renamed / "run.json").read_text())
        (runs_dir / renamed / "run.json").write_text(json.dumps({**meta, "run_id": renamed, "created": created}))
        made.append(renamed)
    everything = [record.run_id for record in store.list()]
    assert everything == made[::-1] and store.count() == 4
    assert [record.run_id for record in store.scan()] == everything
    assert [record.run_id for record in store.recent(2)] == everything[:2]
    from cnnkit.runs import listing

    read = []
    real = listing.read_run_json
    monkeypatch.setattr("cnnkit.runs.store.read_run_json", lambda path: read.append(path) or real(path))
    assert store.recent(1)[0].run_id == made[-1] and len(read) == 1  # the newest second's one run only
    read.clear()
    assert [record.run_id for record in store.recent(2)] == everything[:2] and len(read) == 3  # and the next second's two


def test_the_imported_index_is_made_once_from_an_older_folder_and_drops_what_has_gone(store, runs_dir, monkeypatch):
    from cnnkit.runs.imported import IMPORTED_DIR, imported_runs, mark_imported

    assert imported_runs(RunStore(runs_dir / "none")) == [] and not (runs_dir / "none").exists()  # nothing made
    trained = store.create(SPEC).run_id
    old, new = (store.create(SPEC, kind="imported").run_id for _ in range(2))
    store.update(old, created=1.0)
    store.update(new, created=2.0)
    assert os.listdir(runs_dir / IMPORTED_DIR) == []  # a new runs folder starts with an empty index
    os.rmdir(runs_dir / IMPORTED_DIR)  # as a folder from before the index
    mark_imported(store, new)  # an import there before Models opens: no index of one run, that would hide `old`
    assert not (runs_dir / IMPORTED_DIR).exists()
    assert [r.run_id for r in imported_runs(store)] == [new, old]  # read whole, once
    assert sorted(os.listdir(runs_dir / IMPORTED_DIR)) == sorted([old, new])
    monkeypatch.setattr(store, "list", lambda: pytest.fail("read every run again"))
    store.delete(old)
    mark_imported(store, trained)  # a stray marker: not an imported run
    (runs_dir / IMPORTED_DIR / "not a run id").touch()
    damaged = store.create(SPEC, kind="imported").run_id
    mark_imported(store, damaged)
    (runs_dir / damaged / "run.json").write_text("{")  # damaged: its kind cannot be read, its marker stays
    assert [r.run_id for r in imported_runs(store)] == [new]
    assert sorted(os.listdir(runs_dir / IMPORTED_DIR)) == sorted([new, damaged])  # the others' markers are gone


def test_a_run_deleted_while_the_folder_is_read_is_left_out(store, monkeypatch):
    kept, gone = store.create(SPEC).run_id, store.create(SPEC).run_id
    names = store._run_names()
    shutil.rmtree(store.path(gone))
    monkeypatch.setattr(store, "_run_names", lambda: names)  # listed before the delete, read after it
    assert [r.run_id for r in store.list()] == [kept] == [r.run_id for r in store.scan()]
