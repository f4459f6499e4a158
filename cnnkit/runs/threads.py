"""How many threads one TensorFlow op may use in a training process (CNNKIT_OP_THREADS).

TensorFlow runs each op on every core by default. On a 2-core machine a light training step
(a batch of small images through a small network) loses more to handing each op's halves to
two threads, and to those threads spinning while they wait, than it gains: one thread per op
(the two ops that may run at once still do, on the other core) trained chollet-cnn 1.14–1.3×
faster with 15–27% less CPU, the dense nets 1.3–1.4×, moroney-cnn and tf-tutorial-cnn 1.2–1.35×.
A heavy step still wants both cores for its big convolutions: kruse-conv (527 M multiply-adds a
step) trained 1.3–1.7× slower with one thread, kruse-conv-nopool (2 G) 1.15× slower.
docs/PERFORMANCE.md §14 has the numbers. More cores were not measured, so there TensorFlow keeps
its default.

The count must be set before TensorFlow runs its first op, once per process. So the server puts
it into each worker's environment: the warm spare gets a light job's count and takes only the
jobs that want it (`jobs.launch` compares environments); a heavy job gets a fresh worker.
"""

from __future__ import annotations

from cnnkit import settings
from cnnkit.errors import SpecError
from cnnkit.shapes import summarize_spec
from cnnkit.specs import ExperimentSpec
from cnnkit.sysinfo import cpu_count

EVERY_CORE = 0  # TensorFlow's own default
LIGHT_STEP_MACS = 300_000_000  # forward multiply-adds of one training step (batch × network)
FEW_CORES = 2  # measured here; more cores keep TensorFlow's default


def step_macs(spec: ExperimentSpec) -> int:
    """Forward multiply-adds of one training step of the spec's CNN."""
    return summarize_spec(spec).total_macs * spec.training.batch_size


def op_threads_for(spec: ExperimentSpec | None, cores: int | None = None) -> int:
    """Threads per op for a job training `spec` (None: a light job, what the warm spare expects).
    CNNKIT_OP_THREADS wins when set; 0 means every core."""
    chosen = settings.get().op_threads
    if chosen is not None:
        return chosen
    if (cores or cpu_count()) > FEW_CORES:
        return EVERY_CORE
    if spec is None:
        return 1
    try:
        heavy = step_macs(spec) > LIGHT_STEP_MACS
    except SpecError:  # the job itself reports what is wrong with its network
        heavy = False
    return EVERY_CORE if heavy else 1


def environment_for(spec: ExperimentSpec | None) -> dict[str, str]:
    """The worker environment's entry for a job training `spec` (None: the warm spare's)."""
    return {"CNNKIT_OP_THREADS": str(op_threads_for(spec))}
