"""`cnnkit import`, `export` and `robustness`: bring a model in, take a run's model away, and put a
run's CNN and dense baseline through shifts, rotations, zooms and noise.

Both load TensorFlow, so the dashboard runs them as subprocesses (the server never imports it).
A refused file is one line on stderr and exit 2, like every other bad input (cnnkit.cli.main).
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnkit.cli.common import (
    add_data_dir,
    add_experiment_source,
    add_runs_dir,
    load_spec,
    run_store,
)
from cnnkit.errors import UploadError
from cnnkit.specs import DATASET_NAMES


def cmd_import(args) -> int:
    from cnnkit.model.import_spec import NOT_REBUILDABLE
    from cnnkit.model.importing import import_model  # checks the file before TensorFlow loads

    store = run_store(args)
    path = Path(args.file)
    if not path.exists():
        raise UploadError(f"{path.name} does not exist")
    record = import_model(path, args.dataset, input_scale=args.input, name=args.name, filename=path.name,
                          store=store, data_dir=args.data_dir)
    result = record.model_result("cnn")
    source = record.meta.get("data_source") or {}
    if not args.json:
        for row in record.imported.get("layers", []):
            print(f"  {row['name'][:24]:<24} {row['keras'][:22]:<22} {row['params']:>10,}  {row['cnnkit']}")
        rebuild = "rebuildable in cnnkit" if record.rebuildable else \
            f"{NOT_REBUILDABLE}: {record.imported.get('why_not_rebuildable')}"
        data = "the bundled SAMPLE" if source.get("is_sample") else "the full test split"
        print(f"imported as run {record.run_id} ({rebuild})")
        print(f"test accuracy {result['test_accuracy']:.2%}, loss {result['test_loss']:.4f} on "
              f"{record.meta['data_summary']['test']:,} images of {data}; {result['params']:,} parameters")
    print(json.dumps({"run_id": record.run_id, "test_accuracy": result["test_accuracy"],
                      "test_loss": result["test_loss"], "params": result["params"]}))
    return 0


def cmd_export(args) -> int:
    from cnnkit.views.exports import write_export

    store = run_store(args)
    out = write_export(store.get(args.run), args.format, args.out, args.model)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.stat().st_size
    print(f"wrote {out} ({size:,} bytes)")
    return 0


def cmd_robustness(args) -> int:
    import sys

    from cnnkit.data.prepare import prepare_data
    from cnnkit.errors import RunError
    from cnnkit.model.inspection import Predictor  # compiled inference: ~4× numpy's speed here
    from cnnkit.views import robustness

    store = run_store(args)
    record = store.get(args.run)
    if record.status != "finished" or not record.has_model("cnn") or record.spec is None:
        raise RunError(f"run {args.run} is {record.status}: the robustness lab needs a finished run")
    if args.limit is not None and args.limit < 1:
        raise UploadError(f"--limit must be at least 1, got {args.limit}")
    prepared = prepare_data(record.spec, args.data_dir)
    n = min(args.limit or robustness.DEFAULT_LIMIT, len(prepared.y_test))
    images, labels = prepared.x_test[:n], prepared.y_test[:n]
    predictors = {"cnn": Predictor.from_file(record.model_path("cnn"), record.spec.output).probabilities}
    if record.has_model("baseline"):
        predictors["baseline"] = Predictor.from_file(record.model_path("baseline")).probabilities

    def progress(what: str, done: int, total: int) -> None:
        print(f"robustness: {what} ({done}/{total})", file=sys.stderr, flush=True)

    report = robustness.robustness_report(predictors, images, labels, progress)
    robustness.save_report(record.path, {**report, "run_id": record.run_id, "n_images": n,
                                         "data_source": prepared.source.to_dict()})
    print(json.dumps({"run_id": record.run_id, "n_images": n,
                      **{name: report[name] for name in robustness.TRANSFORMS}}))
    return 0


def cmd_lrfind(args) -> int:
    import sys

    from cnnkit.data.prepare import prepare_data

    if not 5 <= args.steps <= 1000:
        raise UploadError(f"--steps must be from 5 to 1,000, got {args.steps}")
    spec = load_spec(args)
    prepared = prepare_data(spec, args.data_dir)
    from cnnkit.model.lr_finder import find_lr  # TensorFlow loads here
    from cnnkit.views.lr import suggest_lr


    def progress(done: int, total: int) -> None:
        print(f"lrfind: batch {done}/{total}", file=sys.stderr, flush=True)

    result = find_lr(spec, prepared, args.steps, progress)
    print(json.dumps({**result, "suggested": suggest_lr(result["lrs"], result["losses"])}))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("import", help="bring a .keras model trained elsewhere in as an 'imported' run",
                       description="Check a .keras file (it is treated as hostile), evaluate it on the "
                                   "dataset's test split and add it to the runs as 'imported'.")
    p.add_argument("file", help="the .keras file (Keras 3 format)")
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="what the model was trained on")
    p.add_argument("--input", choices=("unit", "raw"), default="unit",
                   help="the pixels the model expects: unit = 0–1 (x / 255, the default), raw = 0–255")
    p.add_argument("--name", help="the run's name (default: 'imported FILE')")
    add_runs_dir(p)
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write a run's model as keras, python, savedmodel or onnx",
                       description="keras: the float32 .keras file; python: a standalone Keras script "
                                   "that rebuilds and trains the architecture; savedmodel: a TensorFlow "
                                   "SavedModel folder; onnx: an ONNX file (via tf2onnx).")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    p.add_argument("--format", required=True, choices=("keras", "python", "savedmodel", "onnx"),
                   help="what to write (see above)")
    p.add_argument("--out", required=True, help="the file (a folder for savedmodel) to write")
    p.add_argument("--model", choices=("cnn", "baseline"), default="cnn", help="which of the run's models")
    add_runs_dir(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("robustness", help="a run's CNN and baseline under shift, rotation, scale and noise",
                       description="Accuracy on the first N test images, shifted 0–8 px (the mean of four "
                                   "directions), rotated ±45°, scaled 0.6–1.4× and with Gaussian noise; "
                                   "stored in the run folder for the Robustness page.")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    add_runs_dir(p)
    add_data_dir(p)
    p.add_argument("--limit", type=int, help="the first N test images (default 1,000)")
    p.add_argument("--json", action="store_true", help="(the last line is always the JSON report)")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("lrfind", help="the learning-rate finder: loss against a growing rate, and a suggestion",
                       description="Trains up to --steps batches with the rate growing from 1e-7 to 10, stops "
                                   "when the loss blows up, restores the weights; the last line is JSON "
                                   '{"lrs", "losses", "suggested"}.')
    add_experiment_source(p)
    p.add_argument("--steps", type=int, default=100, help="batches at most (default 100)")
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="(the last line is always JSON)")
    p.set_defaults(func=cmd_lrfind)
