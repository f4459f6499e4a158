"""Resource caps for a deployment, checked with the shape calculator before anything is built.

Defaults fit Streamlit Community Cloud (about 1 GB of memory); a private server raises them
with environment variables. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit import settings
from cnnkit.errors import SpecError
from cnnkit.shapes import summarize_spec
from cnnkit.specs import ExperimentSpec


@dataclass(frozen=True)
class Limits:
    max_params: int = 20_000_000
    max_activation_mb: float = 600.0   # per training batch, activations + their gradients
    max_epochs: int = 200
    max_batch_size: int = 4096
    max_job_minutes: float = 0.0       # wall-clock per training job; 0 = no limit (set it on a public server)

    def __repr__(self) -> str:
        job = f"{self.max_job_minutes:g} min" if self.max_job_minutes else "no limit"
        return (f"Limits(params≤{self.max_params:,}, activations≤{self.max_activation_mb:g} MB, "
                f"epochs≤{self.max_epochs}, batch≤{self.max_batch_size}, job time {job})")

    @classmethod
    def from_env(cls) -> Limits:
        """The caps in force (CNNKIT_MAX_*; a typo in one means its default, see settings)."""
        s = settings.get()
        return cls(max_params=s.max_params, max_activation_mb=s.max_activation_mb, max_epochs=s.max_epochs,
                   max_batch_size=s.max_batch_size, max_job_minutes=s.max_job_minutes)


def check_spec(spec: ExperimentSpec, limits: Limits | None = None):
    """Raise SpecError if the spec is impossible or exceeds the caps; returns its summary."""
    limits = limits or Limits.from_env()
    summary = summarize_spec(spec)
    training = spec.training
    if training.epochs > limits.max_epochs:
        raise SpecError("training.epochs", f"{training.epochs} is above this server's limit of "
                                           f"{limits.max_epochs} epochs (CNNKIT_MAX_EPOCHS)")
    if training.batch_size > limits.max_batch_size:
        raise SpecError("training.batch_size", f"{training.batch_size} is above this server's limit of "
                                               f"{limits.max_batch_size} (CNNKIT_MAX_BATCH_SIZE)")
    if summary.total_params > limits.max_params:
        raise SpecError("layers", f"the network has {summary.total_params:,} parameters; this server allows "
                                  f"{limits.max_params:,} (CNNKIT_MAX_PARAMS). Use fewer filters/units or "
                                  f"pool earlier")
    activation_mb = summary.activation_bytes(training.batch_size) / 1e6
    if activation_mb > limits.max_activation_mb:
        raise SpecError("layers", f"one training batch needs about {activation_mb:,.0f} MB of activations; "
                                  f"this server allows {limits.max_activation_mb:,.0f} MB "
                                  f"(CNNKIT_MAX_ACTIVATION_MB). Use a smaller batch size, fewer filters, "
                                  f"or pool earlier")
    return summary


def check_data_size(spec: ExperimentSpec, num_train: int, num_test: int | None = None, *,
                    sample: bool = False) -> None:
    """Raise SpecError if the spec asks for more images than the loaded data has (the bundled
    sample has 4,000 training images, the full MNIST 60,000): say so before the job starts.
    `sample`: the data is the bundled sample, and the message says where the full set comes from."""
    limit = spec.dataset.train_limit
    if limit is not None and limit > num_train:
        hint = (" (only the bundled SAMPLE was found: set CNNKIT_DATA_DIR or fill the Keras cache for "
                "the full dataset)") if sample else ""
        raise SpecError("dataset.train_limit", f"{limit:,} is more than the {num_train:,} training images "
                                               f"available here{hint}; use at most {num_train:,} or leave it "
                                               f"empty for all of them")
    limit = spec.dataset.test_limit
    if limit is not None and num_test is not None and limit > num_test:
        raise SpecError("dataset.test_limit", f"{limit:,} is more than the {num_test:,} test images "
                                              f"available here")
