"""Import TensorFlow once, quietly: its C++ start-up banner (oneDNN notes, absl warnings) goes
to file descriptor 2 before any Python logging setting can stop it, and it would land in the
middle of the CLI's output and every run's log. Python exceptions still propagate."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401 - imported here so its backend start-up is silenced too
            import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tensorflow


tf = import_tensorflow()
keras = sys.modules["keras"]
