"""Cut the bundled samples cnnkit/data/samples/<name>_sample.npz from the real IDX files.

    python tools/make_samples.py [--source ../shared/datasets] [--seed 0]

Per dataset: 400 training and 100 test images of each class, drawn at random with a
fixed seed, kept in their original order; `indices_*` record where each came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from cnnkit.data.catalog import DATASETS  # noqa: E402
from cnnkit.data.idx import IDX_FILES, read_idx
from cnnkit.data.sources import SAMPLES_DIR

PER_CLASS = {"train": 400, "test": 100}


def stratified_indices(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """per_class random indices of every class, sorted (original order)."""
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def make_sample(name: str, source: Path, out_dir: Path, seed: int) -> Path:
    info = DATASETS[name]
    folder = source / info.idx_folder
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        x, y = read_idx(folder / images_name), read_idx(folder / labels_name)
        index = stratified_indices(y, PER_CLASS[split], rng)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[index], y[index]
        arrays[f"indices_{split}"] = index.astype(np.int32)
    out = out_dir / f"{name}_sample.npz"
    np.savez_compressed(out, **arrays)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/datasets"),
                        help="folder holding mnist/ and fashion-mnist/ with the IDX .gz files")
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("mnist", "fashion_mnist"):
        out = make_sample(name, args.source, args.out, args.seed)
        print(f"{out}: {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
