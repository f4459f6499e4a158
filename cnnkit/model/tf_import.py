"""Import TensorFlow once, quietly and without the garbage collector.

Its C++ start-up banner (oneDNN notes, absl warnings) goes to file descriptor 2 before any
Python logging setting can stop it, and it would land in the middle of the CLI's output and
every run's log. Python exceptions still propagate.

The import makes a few hundred thousand objects that live as long as the process, and the
collector scanned them again and again while they were made: with it off, importing
cnnkit.model.training took 2.65–2.80 s instead of 3.10–3.28 s (three pairs, taking turns).
Afterwards `gc.freeze()` moves them out of every later collection's way, so the collections
during training scan only what training makes. What the process held at that moment is never
collected: a one-time cost, bounded by that heap. The training processes import TensorFlow first
thing; the Streamlit server only for a model numpy cannot run or an evaluation run again.

Keras imports pandas (to accept DataFrames in `fit`) and IPython (to tell a notebook) when they
are installed: ~0.3 s of a training process's start, for nothing cnnkit gives Keras. Unless the
process already has them, they are hidden while TensorFlow imports (Keras then takes only arrays
and datasets, which is all cnnkit passes) and importable again right after. Not in the Streamlit
server: hiding a module is seen by every thread, and another session may import it meanwhile.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager

HIDDEN_FROM_KERAS = ("pandas", "IPython")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextmanager
def hidden(names: tuple[str, ...]):
    """Within: `import NAME` raises ImportError for each name not imported yet (a None in
    sys.modules does that); after: importable as usual."""
    absent = [name for name in names if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in absent:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    collecting = gc.isenabled()
    gc.disable()
    try:
        unseen = () if "streamlit" in sys.modules else HIDDEN_FROM_KERAS
        with open(os.devnull, "w") as devnull, hidden(unseen):
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401 - imported here so its backend start-up is silenced too
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        gc.freeze()  # what exists now lives as long as the process: no collection scans it again
        if collecting:
            gc.enable()
    return tensorflow


tf = import_tensorflow()
keras = sys.modules["keras"]
