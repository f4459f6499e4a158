"""The workspace policy: who sees which runs, and that no key or run id reaches another's."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cnnkit.errors import RunError
from cnnkit.presets import PRESETS
from cnnkit.runs import jobs
from cnnkit.runs.store import RunStore
from cnnkit.runs.workspaces import (
    SESSIONS_DIR,
    WorkspaceError,
    check_session_key,
    new_session_key,
    open_workspace,
    prune_sessions,
    server_root,
    workspace_mode,
    workspace_root,
)

SPEC = PRESETS["dense-128"].experiment()


def test_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("CNNKIT_WORKSPACES", raising=False)
    assert workspace_mode() == "shared"
    monkeypatch.setenv("CNNKIT_WORKSPACES", " Session ")
    assert workspace_mode() == "session"
    monkeypatch.setenv("CNNKIT_WORKSPACES", "everyone")
    with pytest.raises(WorkspaceError, match="shared, session"):
        workspace_mode()


def test_shared_mode_is_the_runs_dir(tmp_path):
    assert workspace_root(tmp_path, "shared") == tmp_path
    assert workspace_root(tmp_path, "shared", "ignored-key") == tmp_path


def test_session_mode_gives_each_key_its_own_hidden_folder(tmp_path):
    a, b = new_session_key(), new_session_key()
    assert a != b and len(a) == 32
    assert workspace_root(tmp_path, "session", a) == tmp_path / SESSIONS_DIR / a
    assert server_root(workspace_root(tmp_path, "session", a)) == tmp_path
    assert server_root(tmp_path) == tmp_path


@pytest.mark.parametrize("key", [None, "", "short", "../../etc/passwd-aaaaaaaaaaaaaaaa", "a/b" * 10,
                                 "." * 30, "x" * 65, "ключ" * 8, 12345678901234567890123, "a b" * 10])
def test_bad_keys_are_refused(tmp_path, key):
    with pytest.raises(WorkspaceError, match="invalid workspace key"):
        workspace_root(tmp_path, "session", key)


def test_good_key_passes():
    key = new_session_key()
    assert check_session_key(key) == key


def test_sessions_see_only_their_own_runs_and_delete_only_them(tmp_path):
    a = open_workspace(tmp_path, "session", new_session_key())
    b = open_workspace(tmp_path, "session", new_session_key())
    shared = open_workspace(tmp_path, "shared")
    run_a = a.create(SPEC).run_id
    run_b = b.create(SPEC).run_id
    own = shared.create(SPEC).run_id
    for store, run_id in ((a, run_a), (b, run_b), (shared, own)):
        store.update(run_id, status="stopped")  # a just-created run is "queued": not deletable
    assert [r.run_id for r in a.list()] == [run_a]
    assert [r.run_id for r in b.list()] == [run_b]
    # The shared ledger does not see the session workspaces (hidden folder) ...
    assert [r.run_id for r in shared.list()] == [own]
    # ... and cannot address them: run ids never start with "." or contain "/".
    for bad in (SESSIONS_DIR, f"{SESSIONS_DIR}/x", f"../{run_a}", "../" + SESSIONS_DIR):
        with pytest.raises(RunError):
            shared.delete(bad)
    with pytest.raises(RunError, match="does not exist"):
        b.delete(run_a)
    b.delete(run_b)
    assert a.exists(run_a) and shared.exists(own) and not (b.root / run_b).exists()


def test_concurrent_creates_never_collide(tmp_path):
    store = RunStore(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: store.create(SPEC).run_id, range(64)))
    assert len(set(ids)) == 64
    assert len(store.list()) == 64


def test_slots_stay_global_across_workspaces(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNKIT_SLOTS_DIR", raising=False)
    session = open_workspace(tmp_path, "session", new_session_key())
    assert jobs.slots_dir(session) == tmp_path / ".slots"
    assert jobs.slots_dir(RunStore(tmp_path)) == tmp_path / ".slots"


def test_prune_removes_only_old_idle_sessions(tmp_path):
    old, fresh, busy = (open_workspace(tmp_path, "session", new_session_key()) for _ in range(3))
    old.update(old.create(SPEC).run_id, status="stopped")
    fresh.update(fresh.create(SPEC).run_id, status="stopped")
    run = busy.create(SPEC).run_id
    busy.update(run, status="running", pid=os.getpid())  # alive: this test process
    stray = tmp_path / SESSIONS_DIR / "not-a-key"
    stray.mkdir()
    long_ago = time.time() - 10 * 86400
    for folder in (old.root, busy.root, stray):
        for path in [folder, *folder.rglob("*")]:
            os.utime(path, (long_ago, long_ago))
    removed = prune_sessions(tmp_path, max_age_seconds=86400)
    assert removed == [old.root.name]
    assert fresh.root.is_dir() and busy.root.is_dir() and stray.is_dir() and not old.root.exists()


def test_the_app_prunes_idle_sessions_when_the_server_starts_and_then_daily(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CNNKIT_WORKSPACES", "session")
    monkeypatch.setenv("CNNKIT_SESSION_DAYS", "7")
    eight_days_ago = time.time() - 8 * 86400

    def idle_session() -> Path:
        folder = open_workspace(tmp_path, "session", new_session_key()).root
        os.utime(folder, (eight_days_ago, eight_days_ago))
        return folder

    old, fresh = idle_session(), open_workspace(tmp_path, "session", new_session_key()).root
    ui._last_prune.clear()  # a fresh server process
    at = AppTest.from_file(str(root / "app_pages" / "home.py"), default_timeout=30).run()
    assert not at.exception
    assert not old.exists() and fresh.is_dir()
    visitor = at.query_params["ws"]
    assert (tmp_path / ".sessions" / (visitor[0] if isinstance(visitor, list) else visitor)).is_dir()

    later = idle_session()  # within the same day: left until the next daily pass
    AppTest.from_file(str(root / "app_pages" / "home.py"), default_timeout=30).run()
    assert later.is_dir()
    ui._last_prune()["at"] -= ui.PRUNE_EVERY_SECONDS + 1  # a day later
    AppTest.from_file(str(root / "app_pages" / "home.py"), default_timeout=30).run()
    assert not later.exists() and fresh.is_dir()


# ---------------------------------------------------------------------------
# Session fixation (issue 12, item 6)


def _home(tmp_path, monkeypatch, ws: str | None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CNNKIT_WORKSPACES", "session")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app_pages" / "home.py"),
                           default_timeout=30)
    if ws:
        at.query_params["ws"] = ws
    return at.run()


def _ws(at) -> str:
    value = at.query_params["ws"]
    return value[0] if isinstance(value, list) else value


def test_a_link_to_someone_elses_workspace_is_never_joined_silently(tmp_path, monkeypatch):
    attacker = open_workspace(tmp_path, "session", new_session_key())
    attacker.create(SPEC)
    key = attacker.root.name
    at = _home(tmp_path, monkeypatch, key)
    assert not at.exception
    assert any("existing workspace" in w.value for w in at.warning)
    assert not at.title  # nothing of the page (or of the workspace) before the visitor chooses
    at.button(key="ws_new").click().run()
    mine = _ws(at)
    assert mine != key and (tmp_path / ".sessions" / mine).is_dir()
    assert at.title and not any("existing workspace" in w.value for w in at.warning)
    assert len(RunStore(tmp_path / ".sessions" / mine).list()) == 0  # not the attacker's run


def test_the_owner_of_a_workspace_continues_in_it_after_a_reload(tmp_path, monkeypatch):
    owner = open_workspace(tmp_path, "session", new_session_key())
    owner.create(SPEC)
    at = _home(tmp_path, monkeypatch, owner.root.name)
    at.button(key="ws_join").click().run()
    assert not at.exception and _ws(at) == owner.root.name
    assert [str(m.value) for m in at.metric if "Runs" in m.label] == ["1"]  # its one run


def test_a_key_the_server_never_issued_is_not_honoured(tmp_path, monkeypatch):
    made_up = new_session_key()  # well formed, but no such workspace
    at = _home(tmp_path, monkeypatch, made_up)
    assert not at.exception and not at.warning
    assert _ws(at) != made_up and not (tmp_path / ".sessions" / made_up).exists()
