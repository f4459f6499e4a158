"""`cnnkit train`: check the experiment and the data, train in a slot (behind the app's jobs),
progress on stderr, the result on stdout: plain lines for people, or one JSON line with --json
(then the plain lines go to stderr, so people still read them)."""

from __future__ import annotations

import sys

from cnnkit.cli.common import (
    EXIT_BAD_INPUT,
    SPEC_PATHS,
    UsageError,
    add_runs_dir,
    add_spec_options,
    data_dir_of,
    load_spec,
    print_json,
    run_store,
    say_data_source,
)
from cnnkit.runs.control import ACTIONS
from cnnkit.views.text import TerminalProgress, model_title


def add_command(sub) -> None:
    p = sub.add_parser("train", help="train a preset or spec, with a progress bar",
                       description="Every setting of the Train page is an option; what is not given "
                                   "comes from the preset or the spec file. Progress goes to stderr, the "
                                   "result to stdout.")
    source = add_spec_options(p, training=True)
    source.add_argument("--continue", dest="continue_run", metavar="RUN_ID",
                        help="train a finished or stopped run --epochs more epochs from its last checkpoint, "
                             "with the optimizer's state (its history goes on)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("control", help="steer a run while it trains: pause, resume, lr VALUE, stop",
                       description="The job applies the command after the batches it is running (one "
                                   "call into TensorFlow: at most 16, a fraction of a second); a new learning "
                                   "rate replaces the schedule from then on.")
    p.add_argument("--run", required=True, metavar="RUN_ID", help="the run to steer (see `cnnkit runs`)")
    p.add_argument("action", choices=ACTIONS, help="pause, resume, lr (with a value) or stop")
    p.add_argument("value", nargs="?", type=float, help="the new learning rate, for lr")
    add_runs_dir(p)
    p.set_defaults(func=cmd_control)


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


def continued_run(args, store):
    """The run of --continue, queued again for --epochs more epochs (no other setting applies)."""
    from cnnkit.runs.jobs import requeue

    given = [path for path in SPEC_PATHS if hasattr(args, path) and path != "training.epochs"]
    if given:
        raise UsageError(f"--continue keeps the run's settings; only --epochs (how many more) applies, not "
                         f"--{given[0].rpartition('.')[2].replace('_', '-')}")
    if not hasattr(args, "training.epochs"):
        raise UsageError("--continue needs --epochs N: how many more epochs to train")
    return requeue(store, args.continue_run, getattr(args, "training.epochs"))


def cmd_train(args) -> int:
    store = run_store(args)
    data_dir = data_dir_of(args)
    if args.continue_run:
        record = continued_run(args, store)
    else:
        spec = load_spec(args)
        from cnnkit.limits import check_spec

        check_spec(spec)
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


def cmd_control(args) -> int:
    from cnnkit.runs.control import send

    if (args.action == "lr") != (args.value is not None):
        raise UsageError("lr needs the new learning rate (control --run R lr 0.0003); the others take no value")
    command = send(run_store(args), args.run, args.action, args.value)
    done = {"stop": "it ends within one batch and its last finished epoch is tested",
            "pause": "it pauses after the batches it is running (at most 16)", "resume": "it goes on from where it paused",
            "lr": f"the learning rate is {command.value:g} from its next call (at most 16 batches on)" if command.value else ""}[command.action]
    print(f"run {args.run}: {command.action} sent; {done}")
    return 0
