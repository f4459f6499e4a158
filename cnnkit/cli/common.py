"""What every cnnkit command shares: the usage error (exit 2, one line), reading the
experiment from --preset or --spec with the options that change it, and the runs folder."""

from __future__ import annotations

from pathlib import Path

from cnnkit.errors import UploadError


class UsageError(Exception):
    """Bad command-line input: exit 2 with one line."""


def load_spec(args):
    """The experiment of --preset or --spec (read like an upload), with the command's options applied."""
    from cnnkit.presets import get_preset

    if getattr(args, "spec", None):
        # The upload's reader: bounded (a device or a FIFO is refused), BOM and encoding checked.
        from cnnkit.model.uploads import read_spec_upload

        path = Path(args.spec)
        try:
            spec = read_spec_upload(path)
        except FileNotFoundError:
            raise UsageError(f"cannot read spec file {path}: it does not exist") from None
        except UploadError as exc:
            raise UsageError(f"cannot read spec file {path.name}: {exc}") from None
    elif getattr(args, "preset", None):
        spec = get_preset(args.preset).experiment()
    else:
        raise UsageError("give --preset NAME or --spec FILE")
    changes = {}
    if getattr(args, "dataset", None):
        changes["dataset.name"] = args.dataset
    for option, key in (("epochs", "training.epochs"), ("batch_size", "training.batch_size"),
                        ("optimizer", "training.optimizer"), ("lr", "training.learning_rate"),
                        ("seed", "training.seed"), ("train_limit", "dataset.train_limit"),
                        ("test_limit", "dataset.test_limit"), ("validation_split", "dataset.validation_split"),
                        ("normalization", "dataset.normalization")):
        value = getattr(args, option, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "baseline", None):
        changes["baseline"] = args.baseline
    return spec.updated(changes) if changes else spec


def run_store(args):
    """The runs folder of --runs-dir, else CNNKIT_RUNS_DIR's."""
    from cnnkit.runs.store import RunStore

    return RunStore(getattr(args, "runs_dir", None))
