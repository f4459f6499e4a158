"""Plain-text views without Streamlit: number and time formatters, and the CLI's progress line."""

from __future__ import annotations

import sys

MODEL_TITLES = {"cnn": "CNN", "baseline": "dense baseline"}


def model_title(key: str, *, capital: bool = False) -> str:
    """"CNN", "dense baseline"; `capital` for the start of a label ("Dense baseline train")."""
    title = MODEL_TITLES.get(key, key)
    return title[:1].upper() + title[1:] if capital else title


class TerminalProgress:
    """A one-line progress bar on stderr (a line per epoch when stderr is not a terminal)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()

    def __repr__(self) -> str:
        return f"TerminalProgress(tty={self.tty})"

    def __call__(self, progress: dict) -> None:
        phase = progress.get("phase")
        if phase == "training" and self.tty:
            done, total = progress.get("batch", 0), max(progress.get("batches", 1), 1)
            filled = int(30 * done / total)
            self.stream.write(
                f"\r{progress.get('model')} epoch {progress.get('epoch')}/{progress.get('epochs')} "
                f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} loss {progress.get('loss', 0):.4f} "
                f"{progress.get('images_per_second', 0):,.0f} img/s ETA {progress.get('eta_seconds', 0):.0f}s ")
            self.stream.flush()
        elif phase == "epoch_end":
            val = (f" val_acc {progress['val_accuracy']:.4f}" if "val_accuracy" in progress else "")
            self.stream.write(f"{chr(13) if self.tty else ''}{progress['model']} epoch {progress['epoch']}: "
                              f"loss {progress.get('loss', 0):.4f} acc {progress.get('accuracy', 0):.4f}{val} "
                              f"({progress['seconds']:.1f} s, {progress['images_per_second']:,.0f} img/s)"
                              f"{' ' * 20}\n")
            self.stream.flush()
        elif phase in ("loading data", "evaluating"):
            self.stream.write(f"{phase}…\n")
            self.stream.flush()

