"""`cnnkit import` and `cnnkit export`: bring a model trained elsewhere in, take a run's model away.

Both load TensorFlow, so the dashboard runs them as subprocesses (the server never imports it).
A refused file is one line on stderr and exit 2, like every other bad input (cnnkit.cli.main).
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnkit.errors import UploadError
from cnnkit.specs import DATASET_NAMES


def cmd_import(args) -> int:
    from cnnkit.data.catalog import get_dataset_info
    from cnnkit.model.import_spec import NOT_REBUILDABLE
    from cnnkit.model.uploads import check_upload
    from cnnkit.runs.store import RunStore

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    path = Path(args.file)
    if not path.exists():
        raise UploadError(f"{path.name} does not exist")
    # Every check that needs no TensorFlow first: a hostile file is refused in well under a
    # second and ~100 MB, before TensorFlow's ~3 s and ~500 MB.
    check_upload(path, get_dataset_info(args.dataset))
    from cnnkit.model.importing import import_model

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
    from cnnkit.runs.store import RunStore
    from cnnkit.views.exports import write_export

    store = RunStore(args.runs_dir) if args.runs_dir else RunStore()
    out = write_export(store.get(args.run), args.format, args.out, args.model)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() else out.stat().st_size
    print(f"wrote {out} ({size:,} bytes)")
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
    p.add_argument("--runs-dir", dest="runs_dir", help="the runs folder (default: CNNKIT_RUNS_DIR)")
    p.add_argument("--data-dir", dest="data_dir", help="IDX files of the dataset (default: CNNKIT_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write a run's model as keras, python, savedmodel or onnx",
                       description="keras: the float32 .keras file; python: a standalone Keras script "
                                   "that rebuilds and trains the architecture; savedmodel: a TensorFlow "
                                   "SavedModel folder; onnx: an ONNX file (via tf2onnx).")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    p.add_argument("--format", required=True, choices=("keras", "python", "savedmodel", "onnx"))
    p.add_argument("--out", required=True, help="the file (a folder for savedmodel) to write")
    p.add_argument("--model", choices=("cnn", "baseline"), default="cnn", help="which of the run's models")
    p.add_argument("--runs-dir", dest="runs_dir", help="the runs folder (default: CNNKIT_RUNS_DIR)")
    p.set_defaults(func=cmd_export)
