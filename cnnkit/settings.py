"""Every CNNKIT_* environment variable, read and validated in one place, and the repo root.

`get()` returns the settings in force as a frozen `Settings`. They are parsed once per
distinct environment (a test that sets a variable gets fresh settings; a server that never
changes its environment parses it once). No other module reads a CNNKIT_* variable.

Two kinds of value:
- a server's resource caps and counts: a typo ("abc", "-1", "nan") falls back to the default,
  so one bad setting cannot take every page down;
- CNNKIT_WORKSPACES, which decides who sees whose runs: anything but a known mode is refused
  (`WorkspaceError`), because a typo that silently meant "shared" would show every visitor's
  runs to everyone on a public server.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from cnnkit.errors import WorkspaceError

# The checkout (or the installed site-packages folder) that holds the cnnkit package: worker
# processes start from here, so `python -m cnnkit.worker` finds the same code.
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent

WORKSPACE_MODES = ("shared", "session")
ENGINES = ("local", "ray")
WARM_WORKER_MODES = ("auto", "on", "off")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    # where things are
    data_dir: str | None = None            # CNNKIT_DATA_DIR: mnist/ and fashion-mnist/ IDX files
    runs_dir: str = "runs"                 # CNNKIT_RUNS_DIR
    slots_dir: str | None = None           # CNNKIT_SLOTS_DIR: training slots (else <runs>/.slots)
    offline: bool = False                  # CNNKIT_OFFLINE: never try Keras' download
    # who sees what, and how much one may use
    workspaces: str = "shared"             # CNNKIT_WORKSPACES: shared | session
    session_days: float = 7.0              # CNNKIT_SESSION_DAYS: an idle session workspace is deleted after this
    max_jobs: int = 1                      # CNNKIT_MAX_JOBS: trainings at once
    max_jobs_per_workspace: int = 2        # CNNKIT_MAX_JOBS_PER_WORKSPACE: queued + running, per visitor
    max_queue: int = 20                    # CNNKIT_MAX_QUEUE: queued + running on the whole server
    max_params: int = 20_000_000           # CNNKIT_MAX_PARAMS
    max_activation_mb: float = 600.0       # CNNKIT_MAX_ACTIVATION_MB: per training batch, with gradients
    max_epochs: int = 200                  # CNNKIT_MAX_EPOCHS
    max_batch_size: int = 4096             # CNNKIT_MAX_BATCH_SIZE
    max_job_minutes: float = 0.0           # CNNKIT_MAX_JOB_MINUTES: 0 = no limit
    max_sweep_trials: int = 48             # CNNKIT_MAX_SWEEP_TRIALS: trials in one sweep
    max_sweep_minutes: float = 0.0         # CNNKIT_MAX_SWEEP_MINUTES: a sweep's estimated time; 0 = no limit
    # where training runs
    engine: str = "local"                  # CNNKIT_ENGINE: local | ray (every job, sweeps and ordinary runs)
    ray_address: str | None = None         # CNNKIT_RAY_ADDRESS: the Ray cluster (else RAY_ADDRESS, else a local Ray)
    ray_cpus_per_trial: float = 1.0        # CNNKIT_RAY_CPUS_PER_TRIAL: what each Ray task asks for
    ray_gpus_per_trial: float = 0.0        # CNNKIT_RAY_GPUS_PER_TRIAL: 1 (or 0.5 to share) on GPU nodes
    warm_worker: str = "auto"              # CNNKIT_WARM_WORKER: auto (on with 4 GiB or more) | on | off
    # training
    precision: str = "auto"                # CNNKIT_PRECISION: auto | float32 | mixed_bfloat16 | mixed_float16
    op_threads: int | None = None          # CNNKIT_OP_THREADS: auto (None) | 0 (every core) | N threads per TF op
    quick_train_limit: int | None = None   # CNNKIT_QUICK_TRAIN_LIMIT: Draw's quick train (tests shrink it)
    quick_train_epochs: int | None = None  # CNNKIT_QUICK_TRAIN_EPOCHS
    # for developers and tests
    debug: bool = False                    # CNNKIT_DEBUG: tracebacks from the CLI
    raise_errors: bool = False             # CNNKIT_RAISE: a failed job re-raises after recording it
    test_hold_at: tuple[int, int] | None = None  # CNNKIT_TEST_HOLD_AT=EPOCH:BATCH: a job holds there
    screenshots_dir: str | None = None     # CNNKIT_SCREENSHOTS_DIR: where the browser test saves screenshots
    e2e_report: str | None = None          # CNNKIT_E2E_REPORT: where the browser test copies its timings

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != f.default]
        return f"Settings({', '.join(changed)})"

    @classmethod
    def from_env(cls, environ=None) -> Settings:
        env = {k: v for k, v in (os.environ if environ is None else environ).items() if k.startswith("CNNKIT_")}
        d = cls()
        return cls(
            data_dir=_text(env, "CNNKIT_DATA_DIR"),
            runs_dir=_text(env, "CNNKIT_RUNS_DIR") or d.runs_dir,
            slots_dir=_text(env, "CNNKIT_SLOTS_DIR"),
            offline=_flag(env, "CNNKIT_OFFLINE"),
            workspaces=workspace_mode(env.get("CNNKIT_WORKSPACES")),
            session_days=_positive(env, "CNNKIT_SESSION_DAYS", d.session_days),
            max_jobs=int(_positive(env, "CNNKIT_MAX_JOBS", d.max_jobs, minimum=1)),
            max_jobs_per_workspace=int(_positive(env, "CNNKIT_MAX_JOBS_PER_WORKSPACE", d.max_jobs_per_workspace,
                                                 minimum=1)),
            max_queue=int(_positive(env, "CNNKIT_MAX_QUEUE", d.max_queue, minimum=1)),
            max_params=int(_positive(env, "CNNKIT_MAX_PARAMS", d.max_params)),
            max_activation_mb=_positive(env, "CNNKIT_MAX_ACTIVATION_MB", d.max_activation_mb),
            max_epochs=int(_positive(env, "CNNKIT_MAX_EPOCHS", d.max_epochs)),
            max_batch_size=int(_positive(env, "CNNKIT_MAX_BATCH_SIZE", d.max_batch_size)),
            max_job_minutes=_positive(env, "CNNKIT_MAX_JOB_MINUTES", d.max_job_minutes),
            max_sweep_trials=int(_positive(env, "CNNKIT_MAX_SWEEP_TRIALS", d.max_sweep_trials, minimum=1)),
            max_sweep_minutes=_positive(env, "CNNKIT_MAX_SWEEP_MINUTES", d.max_sweep_minutes),
            engine=_choice(env, "CNNKIT_ENGINE", ENGINES, d.engine),
            ray_address=_text(env, "CNNKIT_RAY_ADDRESS"),
            ray_cpus_per_trial=_positive(env, "CNNKIT_RAY_CPUS_PER_TRIAL", d.ray_cpus_per_trial),
            ray_gpus_per_trial=_positive(env, "CNNKIT_RAY_GPUS_PER_TRIAL", d.ray_gpus_per_trial),
            warm_worker=_choice(env, "CNNKIT_WARM_WORKER", WARM_WORKER_MODES, d.warm_worker),
            precision=_choice(env, "CNNKIT_PRECISION", PRECISIONS, d.precision),
            op_threads=_count(env, "CNNKIT_OP_THREADS"),
            quick_train_limit=_whole(env, "CNNKIT_QUICK_TRAIN_LIMIT"),
            quick_train_epochs=_whole(env, "CNNKIT_QUICK_TRAIN_EPOCHS"),
            debug=bool(_text(env, "CNNKIT_DEBUG")),
            raise_errors=bool(_text(env, "CNNKIT_RAISE")),
            test_hold_at=_epoch_batch(env.get("CNNKIT_TEST_HOLD_AT", "")),
            screenshots_dir=_text(env, "CNNKIT_SCREENSHOTS_DIR"),
            e2e_report=_text(env, "CNNKIT_E2E_REPORT"),
        )


VARIABLES = ("CNNKIT_DATA_DIR", "CNNKIT_RUNS_DIR", "CNNKIT_SLOTS_DIR", "CNNKIT_OFFLINE", "CNNKIT_WORKSPACES",
             "CNNKIT_SESSION_DAYS", "CNNKIT_MAX_JOBS", "CNNKIT_MAX_JOBS_PER_WORKSPACE", "CNNKIT_MAX_QUEUE",
             "CNNKIT_MAX_PARAMS", "CNNKIT_MAX_ACTIVATION_MB",
             "CNNKIT_MAX_EPOCHS", "CNNKIT_MAX_BATCH_SIZE", "CNNKIT_MAX_JOB_MINUTES", "CNNKIT_MAX_SWEEP_TRIALS",
             "CNNKIT_MAX_SWEEP_MINUTES", "CNNKIT_ENGINE", "CNNKIT_RAY_ADDRESS",
             "CNNKIT_RAY_CPUS_PER_TRIAL", "CNNKIT_RAY_GPUS_PER_TRIAL", "CNNKIT_WARM_WORKER", "CNNKIT_PRECISION",
             "CNNKIT_OP_THREADS", "CNNKIT_QUICK_TRAIN_LIMIT", "CNNKIT_QUICK_TRAIN_EPOCHS", "CNNKIT_DEBUG", "CNNKIT_RAISE",
             "CNNKIT_TEST_HOLD_AT", "CNNKIT_SCREENSHOTS_DIR", "CNNKIT_E2E_REPORT")


def get() -> Settings:
    """The settings in force now (parsed once per distinct set of CNNKIT_* values)."""
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CNNKIT_")))
    return _parsed(snapshot)


@lru_cache(maxsize=16)
def _parsed(snapshot: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.from_env(dict(snapshot))


# -- the parsers: one per kind of value ---------------------------------------------------------

def _text(env: dict, name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _flag(env: dict, name: str) -> bool:
    return env.get(name, "").strip().lower() in TRUE_WORDS


def _positive(env: dict, name: str, default: float, minimum: float = 0.0) -> float:
    """A positive finite number; a typo or a non-positive value means the default."""
    try:
        value = float(env.get(name, default))
    except ValueError:
        return default
    if not math.isfinite(value):
        return default
    if minimum and value < minimum:
        return minimum
    return value if value > 0 else default


def _whole(env: dict, name: str) -> int | None:
    try:
        value = int(env.get(name, "").strip())
    except ValueError:
        return None
    return value if value > 0 else None


def _count(env: dict, name: str, most: int = 1024) -> int | None:
    """A count from 0 to `most`; "auto", a typo or anything else means None (automatic)."""
    value = env.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) <= most else None


def _choice(env: dict, name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip()
    return value if value in choices else default


def workspace_mode(value: str | None) -> str:
    mode = (value or "shared").strip().lower()
    if mode not in WORKSPACE_MODES:
        raise WorkspaceError(f"CNNKIT_WORKSPACES must be one of {', '.join(WORKSPACE_MODES)}; got {mode[:40]!r}")
    return mode


def _epoch_batch(value: str) -> tuple[int, int] | None:
    epoch, _, batch = value.partition(":")
    if not (epoch.isdigit() and batch.isdigit()):
        return None
    return int(epoch), int(batch)
