"""`cnnkit train`: check the experiment and the data, train in a slot (behind the app's jobs),
progress on stderr, the result on stdout: plain lines for people, or one JSON line with --json
(then the plain lines go to stderr, so people still read them)."""

from __future__ import annotations

import sys

from cnnkit.cli.common import (
    EXIT_BAD_INPUT,
    add_spec_options,
    data_dir_of,
    load_spec,
    print_json,
    run_store,
    say_data_source,
)
from cnnkit.views.text import TerminalProgress, model_title


def add_command(sub) -> None:
    p = sub.add_parser("train", help="train a preset or spec, with a progress bar",
                       description="Every setting of the Train page is an option; what is not given "
                                   "comes from the preset or the spec file. Progress goes to stderr, the "
                                   "result to stdout.")
    add_spec_options(p, training=True)
    p.set_defaults(func=cmd_train)


def check_data(spec, data_dir: str | None) -> None:
    """Data problems (no data, a subset larger than the bundled sample) are bad input: one line
    and exit 2 here, not a failed run with a traceback from inside the job. load_raw caches the
    arrays per process, so the job does not read them again."""
    from cnnkit.data.prepare import prepare
    from cnnkit.data.sources import load_raw

    raw = load_raw(spec.dataset.name, data_dir)
    prepare(raw, train_limit=spec.dataset.train_limit, test_limit=spec.dataset.test_limit,
            validation_split=spec.dataset.validation_split, normalization="none", seed=spec.training.seed)


def result_lines(record, meta: dict) -> list[str]:
    """A finished (or failed) run in plain lines: its id, status (and why), each model's test
    accuracy, its folder."""
    status = record.status
    if status != "finished":
        why = f"{meta.get('reason') or ''} {meta.get('suggestion') or ''}".strip()
        status = f"{status}: {why}" if why else status
    lines = [f"run: {record.run_id}", f"status: {status}"]
    for key in ("cnn", "baseline"):
        result = record.model_result(key)
        if result.get("test_accuracy") is not None:
            loss = result.get("test_loss")
            lines.append(f"{model_title(key)} test accuracy: {result['test_accuracy']:.4f}"
                         + ("" if loss is None else f" (test loss {loss:.4f})"))
    lines.append(f"folder: {record.path.resolve()}")
    return lines


def json_result(store, record, source: dict) -> dict:
    cnn = record.model_result("cnn")
    history = {}
    for entry in store.history(record.run_id):
        if entry.get("model") != "cnn":
            continue
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in entry:
                history.setdefault(key, []).append(entry[key])
    rates = cnn.get("images_per_second") or []
    return {"run_id": record.run_id, "status": record.status, "test_accuracy": cnn.get("test_accuracy"),
            "test_loss": cnn.get("test_loss"), "history": history,
            "seconds_per_epoch": cnn.get("seconds_per_epoch") or [],
            "images_per_second": rates[-1] if rates else None,
            "data_source": source.get("description", ""), "data_source_kind": source.get("kind"),
            "baseline": record.model_result("baseline") or None}


def cmd_train(args) -> int:
    spec = load_spec(args)
    from cnnkit.limits import check_spec

    check_spec(spec)
    store = run_store(args)
    data_dir = data_dir_of(args)
    check_data(spec, data_dir)
    record = store.create(spec)
    from cnnkit.worker import run_in_slot

    meta = run_in_slot(store, record.run_id, data_dir=data_dir, hook=TerminalProgress())
    record = store.get(record.run_id)
    source = meta.get("data_source") or {}
    say_data_source(source.get("description", "unknown"))
    out = sys.stderr if args.json else sys.stdout
    print("\n".join(result_lines(record, meta)), file=out)
    if args.json:
        print_json(json_result(store, record, source))
    if record.status == "failed" and meta.get("reason", "").startswith("The disk is full"):
        return EXIT_BAD_INPUT  # the machine's state, not a bug: one line above, no traceback
    return 0 if record.status == "finished" else 1
