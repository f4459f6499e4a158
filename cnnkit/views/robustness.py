"""The robustness lab: a run's CNN and its dense baseline under shifts, rotations, zooms and noise.

One table (`TRANSFORMS`) says what each transformation is, at which strengths it is measured
and how to apply it; the CLI, the page's charts and the drawing strip all read it. Accuracy is
measured on the first N test images with any predictor's `probabilities` (pixels 0–255 in):
the CLI passes the compiled Keras one. The report is stored in the run folder as
robustness.json, so the page computes it once per run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data import transforms
from cnnkit.runs.store import atomic_write_json, read_json

REPORT_FILE = "robustness.json"
DEFAULT_LIMIT = 1000
SHIFT_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # right, left, down, up: (dy, dx) per pixel


@dataclass(frozen=True)
class Transform:
    name: str
    title: str
    unit: str
    values: tuple[float, ...]
    apply: Callable[[np.ndarray, float], list[np.ndarray]]  # images, strength → the variants averaged
    identity: float = 0                                      # the strength that changes nothing

    def __repr__(self) -> str:
        return f"Transform({self.name}: {self.values[0]:g}…{self.values[-1]:g} {self.unit})"

    def label(self, value: float) -> str:
        return f"{value:+g}{self.unit}" if self.name == "rotation" else f"{value:g}{self.unit}"


def _shifted(images: np.ndarray, pixels: float) -> list[np.ndarray]:
    # the mean of the four directions: a digit moved right and one moved up are different tests
    if pixels == 0:
        return [np.asarray(images, np.float32)]
    return [transforms.shift(images, int(dy * pixels), int(dx * pixels)) for dy, dx in SHIFT_DIRECTIONS]


TRANSFORMS = {t.name: t for t in (
    Transform("shift", "Shift", " px", tuple(range(9)), _shifted),
    Transform("rotation", "Rotation", "°", (-45, -30, -15, 0, 15, 30, 45),
              lambda x, v: [transforms.rotate(x, v)]),
    Transform("scale", "Scale", "×", (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4),
              lambda x, v: [transforms.scale(x, v)], identity=1.0),
    Transform("noise", "Gaussian noise", " σ", (0, 25, 50, 75, 100, 125),
              lambda x, v: [transforms.noise(x, v, seed=0)]),
)}


def accuracy(probabilities: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities(images), axis=1) == labels))


def robustness_report(predictors: dict[str, Callable[[np.ndarray], np.ndarray]], images: np.ndarray,
                      labels: np.ndarray, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """{transform: {"values": [...], model key: [accuracy per value]}} for every TRANSFORMS entry.
    `predictors`: model key ("cnn", "baseline") → probabilities function; `progress(what, done, total)`."""
    started = time.perf_counter()
    total = sum(len(t.values) for t in TRANSFORMS.values())
    done = 0
    report: dict = {}
    for transform in TRANSFORMS.values():
        entry: dict = {"values": list(transform.values)}
        for key in predictors:
            entry[key] = []
        for value in transform.values:
            variants = transform.apply(images, value)
            for key, probabilities in predictors.items():
                entry[key].append(float(np.mean([accuracy(probabilities, v, labels) for v in variants])))
            done += 1
            if progress is not None:
                progress(f"{transform.title} {transform.label(value)}", done, total)
        report[transform.name] = entry
    report["seconds"] = time.perf_counter() - started
    return report


def report_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REPORT_FILE


def save_report(run_dir: str | Path, report: dict) -> None:
    atomic_write_json(report_path(run_dir), report)


def load_report(run_dir: str | Path) -> dict | None:
    """The stored report, or None when there is none or it is not one of ours."""
    try:
        report = read_json(report_path(run_dir))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not all(
            isinstance(report.get(name), dict) and report[name].get("values") == list(t.values)
            for name, t in TRANSFORMS.items()):
        return None
    return report


LAB_SECONDS = 900
PROGRESS = re.compile(r"^robustness: (.*) \((\d+)/(\d+)\)$")


def compute_in_subprocess(run_id: str, runs_dir: str | Path, data_dir: str | None, limit: int,
                          on_progress: Callable[[str, float], None]) -> None:
    """`cnnkit robustness` in its own process (TensorFlow stays out of the server); it stores
    the report in the run folder. `on_progress(what, fraction done)` as each strength is done."""
    from cnnkit.views.exports import run_cnnkit

    def line(text: str) -> None:
        if match := PROGRESS.match(text):
            on_progress(match.group(1), int(match.group(2)) / int(match.group(3)))

    args = ["robustness", f"--run={run_id}", f"--runs-dir={runs_dir}", f"--limit={limit}"]
    run_cnnkit(args + ([f"--data-dir={data_dir}"] if data_dir else []), LAB_SECONDS, "robustness lab", on_line=line)


def curves(report: dict, name: str) -> list[dict]:
    """The chart's lines for one transformation: the CNN, then the baseline (dashed)."""
    entry = report[name]
    return [{"label": "CNN" if key == "cnn" else "dense baseline", "values": entry[key], "dashed": key != "cnn"}
            for key in ("cnn", "baseline") if isinstance(entry.get(key), list)]


def drawing_strip(image: np.ndarray, name: str, predictors: dict[str, Callable[[np.ndarray], np.ndarray]],
                  ) -> list[dict]:
    """The user's 28×28 drawing (uint8, (H, W)) under each strength of one transformation, with
    each model's reading: [{"value", "label", "image" (H, W) uint8, "cnn": (class, p), ...}].
    A shift strip moves the drawing right (one direction: a picture per strength)."""
    transform = TRANSFORMS[name]
    batch = np.asarray(image, np.float32)[None, ..., None]
    strip = []
    for value in transform.values:
        moved = transforms.shift(batch, 0, int(value)) if name == "shift" else transform.apply(batch, value)[0]
        item = {"value": value, "label": transform.label(value), "image": np.clip(moved[0, ..., 0], 0, 255).astype(np.uint8)}
        for key, probabilities in predictors.items():
            probs = np.asarray(probabilities(moved))[0]
            item[key] = (int(probs.argmax()), float(probs.max()))
        strip.append(item)
    return strip
