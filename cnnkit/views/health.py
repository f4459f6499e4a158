"""Training health in words: the per-epoch layer records of health.jsonl turned into a table and
plain-language warnings, each with what to try. No TensorFlow (the records come from the worker's
cnnkit.model.health.HealthMonitor)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnkit.runs.store import HEALTH_FILE, read_jsonl

VANISHING = 1e-5        # a kernel gradient norm below this: the layer has stopped learning
EXPLODING = 10.0        # above this: steps too large, the loss jumps around
MOSTLY_DEAD = 0.5       # more than half of a ReLU layer's units never fire on the probe images


@dataclass(frozen=True)
class HealthWarning:
    layer: str
    problem: str
    suggestion: str

    def __repr__(self) -> str:
        return f"HealthWarning({self.layer}: {self.problem})"


def health_records(run_dir: str | Path, model: str = "cnn") -> list[dict]:
    """The run's health records of one model, one per finished epoch, in order."""
    return [r for r in read_jsonl(Path(run_dir) / HEALTH_FILE)
            if isinstance(r, dict) and r.get("model") == model and isinstance(r.get("layers"), list)]


def warnings_for(record: dict) -> list[HealthWarning]:
    """What is wrong in one epoch's record, layer by layer."""
    found = []
    for row in record.get("layers", []):
        name, grad, dead = str(row.get("name", "?")), row.get("grad_norm"), row.get("dead")
        if isinstance(grad, (int, float)) and grad < VANISHING:
            found.append(HealthWarning(name, f"vanishing gradient (norm {grad:.1e})",
                                       "raise the learning rate, add BatchNorm, or use ReLU instead of "
                                       "sigmoid/tanh in deep stacks"))
        elif isinstance(grad, (int, float)) and grad > EXPLODING:
            found.append(HealthWarning(name, f"exploding gradient (norm {grad:,.1f})",
                                       "lower the learning rate, or add BatchNorm"))
        if isinstance(dead, (int, float)) and dead > MOSTLY_DEAD:
            found.append(HealthWarning(name, f"{dead:.0%} of its ReLU units are dead (zero for every probe image)",
                                       "lower the learning rate, or use ELU/SELU; BatchNorm before the ReLU helps"))
    return found


def health_table(record: dict) -> list[dict]:
    """One row per layer of one epoch: what the Health panel's table shows."""
    return [{"layer": row.get("name"), "type": row.get("type"), "activation mean": row.get("mean"),
             "activation std": row.get("std"), "dead ReLU units": row.get("dead"),
             "gradient norm": row.get("grad_norm")} for row in record.get("layers", [])]


def overhead(records: list[dict], history: list[dict], model: str = "cnn") -> float | None:
    """The probe's seconds as a share of the epochs' training seconds (the cost of watching)."""
    probe = sum(float(r.get("seconds") or 0) for r in records)
    epochs = sum(float(h.get("seconds") or 0) for h in history if h.get("model") == model)
    return probe / epochs if epochs > 0 else None
