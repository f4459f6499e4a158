"""`python -m cnnkit …`: presets, summary, share, train, predict, runs, evaluate, download, reproduce, bench,
import, export, robustness, explain, lrfind (train in cli/training.py; import, export, robustness and
lrfind in cli/models.py; the options several commands share in cli/common.py).

Bad input exits with status 2 and one line on stderr; no command prints a traceback unless
CNNKIT_DEBUG=1. TensorFlow is imported only by the commands that train or run a model.
"""

from __future__ import annotations

import argparse
import sys
import time

from cnnkit import settings
from cnnkit.cli.common import (
    EXIT_BAD_INPUT,
    UsageError,
    add_data_dir,
    add_experiment_source,
    add_runs_dir,
    add_spec_options,
    data_dir_of,
    load_spec,
    print_json,
    run_store,
    say_data_source,
    terminal_text,
)
from cnnkit.errors import CnnkitError, SpecError, is_disk_full
from cnnkit.shapes import format_shape
from cnnkit.specs import DATASET_NAMES


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + error; we want one clear line
        raise UsageError(f"{self.prog}: {message}")


# ---------------------------------------------------------------------------
# commands


def cmd_presets(args) -> int:
    from cnnkit.presets import PRESETS
    from cnnkit.shapes import summarize_spec

    rows = []
    for preset in PRESETS.values():
        params = summarize_spec(preset.experiment()).total_params
        rows.append({"name": preset.name, "title": preset.title, "dataset": preset.dataset.name,
                     "params": params, "published": preset.published.text, "source": preset.source,
                     "notes": preset.notes})
    if args.json:
        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['dataset']:<13} {r['params']:>9,} params  {r['published']}")
        print(f"{'':<{width}}  source: {r['source']}")
    return 0


def cmd_share(args) -> int:
    from cnnkit.views.links import experiment_url

    spec = run_store(args).get(args.run).spec if args.run else load_spec(args)
    if spec is None:
        raise UsageError(f"run {args.run} has no readable experiment")
    print(experiment_url(spec, args.base_url))
    return 0


def cmd_summary(args) -> int:
    from cnnkit.shapes import summarize_spec

    spec = load_spec(args)
    summary = summarize_spec(spec)
    if args.json:
        print_json({"layers": [{"name": r.name, "type": r.type, "output_shape": list(r.output_shape),
                                 "params": r.params, "receptive_field": r.receptive_field}
                                for r in summary.layers],
                     "total_params": summary.total_params})
        return 0
    print(f"{'layer':<16}{'output shape':<16}{'params':>12}{'receptive field':>18}{'mult-adds':>14}")
    print(f"{'input':<16}{format_shape(summary.input_shape):<16}")
    for r in summary.layers:
        rf = "whole image" if r.receptive_field is None else f"{r.receptive_field}×{r.receptive_field} /{r.rf_stride}"
        print(f"{r.name:<16}{format_shape(r.output_shape):<16}{r.params:>12,}{rf:>18}{r.macs:>14,}")
    print(f"total params: {summary.total_params:,}   multiply-adds per image: {summary.total_macs:,}")
    return 0


def _image_for_model(path: str, input_shape) -> tuple[dict, np.ndarray | None]:  # noqa: F821
    import numpy as np

    from cnnkit.data.drawing import load_image, preprocess_drawing

    try:
        image = load_image(path)
    except FileNotFoundError:
        raise UsageError(f"image file {path} does not exist") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if input_shape[-1] == 3:
        from PIL import Image

        rgb = Image.fromarray(image).convert("RGB").resize(input_shape[:2], Image.BILINEAR)
        return {"file": path, "status": "ok"}, np.asarray(rgb, dtype=np.float32)
    result = preprocess_drawing(image, size=input_shape[0])
    entry = {"file": path, "status": result.status}
    if not result.ok:
        entry["message"] = result.message
        return entry, None
    return entry, result.image * 255.0


def cmd_predict(args) -> int:
    store = run_store(args)
    record = store.get(args.run)
    if not record.has_model("cnn"):
        raise UsageError(f"run {args.run} has no saved model ({record.status}): train it first")
    from cnnkit.data.catalog import get_dataset_info

    info = get_dataset_info(record.dataset)
    prepared = [_image_for_model(path, info.input_shape) for path in args.images]
    from cnnkit.model.predictor import (
        load_predictor,  # numpy: no TensorFlow start-up for a prediction
    )

    predictor = load_predictor(record.model_path("cnn"), record.spec.output)
    results = []
    for entry, pixels in prepared:
        if pixels is not None:
            probs = predictor.probabilities(pixels)[0]
            best = int(probs.argmax())
            entry.update(predicted=info.class_names[best], predicted_index=best, confidence=float(probs[best]),
                         probabilities={name: round(float(p), 6) for name, p in zip(info.class_names, probs, strict=False)})
        results.append(entry)
    print_json({"run_id": record.run_id, "dataset": info.name, "class_names": list(info.class_names),
                 "predictions": results})
    return 0


def cmd_explain(args) -> int:
    from cnnkit.data.catalog import get_dataset_info
    from cnnkit.model.lite import LiteModel, LitePredictor, UnsupportedModel
    from cnnkit.views.explain import DEFAULT_METHOD, heatmaps, methods_for

    record = run_store(args).get(args.run)
    if not record.has_model(args.model):
        raise UsageError(f"run {args.run} has no saved {args.model} model ({record.status}): train it first")
    info = get_dataset_info(record.dataset)
    try:
        model = LiteModel.from_file(record.model_path(args.model))
    except UnsupportedModel as exc:
        raise UsageError(f"explanations run on cnnkit's numpy model, which cannot run this one ({exc})") from None
    method = args.method or DEFAULT_METHOD
    if method not in methods_for(model):
        raise UsageError(f"{method} needs conv maps, and the {args.model} model has none; use one of "
                         f"{', '.join(methods_for(model))}")
    if args.target is not None and not 0 <= args.target < info.num_classes:
        raise UsageError(f"--target must be a class index from 0 to {info.num_classes - 1}")
    results = []
    for entry, pixels in (_image_for_model(path, info.input_shape) for path in args.images):
        if pixels is not None:
            x = pixels.reshape(1, *info.input_shape).astype("float32")
            probs = LitePredictor(model, record.spec.output if args.model == "cnn" else "softmax").probabilities(x)[0]
            best = int(probs.argmax())
            target = best if args.target is None else args.target
            heat = heatmaps(model, x, method, target)[0]
            entry = {"predicted": info.class_names[best], "predicted_index": best, "method": method,
                     "target": info.class_names[target], "target_index": target,
                     "input": (x[0, ..., 0] / 255.0).round(4).tolist(), "heatmap": heat.round(4).tolist()}
        results.append(entry)
    print_json(results[0] if len(results) == 1 else {"explanations": results})
    return 0


def cmd_runs(args) -> int:
    store = run_store(args)
    records = store.list()
    if args.json:
        print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print(f"no runs in {store.root}")
        return 0
    for r in records:  # one line each: names and problems are someone's text, made terminal-safe
        acc = "" if r.test_accuracy is None else f"{r.test_accuracy:.4f}"
        problem = f"  ({terminal_text(r.problem, 200)})" if r.problem else ""
        print(f"{r.run_id:<45} {r.status:<11} {r.dataset or '?':<13} epochs {r.epochs_completed:<3} test acc {acc:<7} "
              f"{terminal_text(r.name)}{problem}")
    return 0


def cmd_evaluate(args) -> int:
    store = run_store(args)
    record = store.get(args.run)
    if not record.has_model("cnn"):
        raise UsageError(f"run {args.run} has no saved model ({record.status})")
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.predictor import evaluate, reevaluate

    prepared = prepare_data(record.spec, data_dir_of(args))
    say_data_source(prepared.source.describe())  # as train does: a SAMPLE result is never quiet
    out = {"run_id": record.run_id, "data_source": prepared.source.describe()}
    for key in ("cnn", "baseline"):
        if not record.has_model(key):
            continue
        if args.write:  # also store the predictions (Inspect's confusion matrix reads them)
            accuracy, loss, count = reevaluate(record, key, prepared=prepared)
        else:
            _, accuracy, loss = evaluate(record, key, prepared)
            count = len(prepared.y_test)
        out[key] = {"test_accuracy": accuracy, "test_loss": loss, "test_images": count}
    print_json(out)
    return 0


def cmd_download(args) -> int:
    from cnnkit.data.catalog import get_dataset_info
    from cnnkit.model.keras_download import keras_download

    get_dataset_info(args.dataset)
    keras_download(args.dataset)
    print(f"{args.dataset}: in the Keras cache", file=sys.stderr)
    return 0


def cmd_reproduce(args) -> int:
    from cnnkit.lab.reproduce import main as reproduce_main

    return reproduce_main(args)


def cmd_bench(args) -> int:
    from cnnkit.lab.bench import main as bench_main

    return bench_main(args)


# ---------------------------------------------------------------------------


def build_parser() -> OneLineParser:
    """Every option has a help text (a test walks the parser); the shared ones come from cli.common."""
    parser = OneLineParser(prog="python -m cnnkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser,
                                help="what to do (python -m cnnkit COMMAND -h for its options)")

    p = sub.add_parser("presets", help="list the classic presets")
    p.add_argument("--json", action="store_true", help="print JSON for programs instead of text")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("summary", help="layer table: output shapes, params, receptive fields")
    add_spec_options(p, training=False)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("share", help="a link that opens an experiment on the Build page")
    add_experiment_source(p).add_argument("--run", help="the experiment a run was trained with (a run id)")
    add_runs_dir(p)
    p.add_argument("--base-url", dest="base_url", default="http://localhost:8501/",
                   help="where the app is served (default http://localhost:8501/)")
    p.set_defaults(func=cmd_share)

    from cnnkit.cli.sweep import add_command as add_sweep
    from cnnkit.cli.training import add_command as add_train

    add_train(sub)
    add_sweep(sub)

    p = sub.add_parser("predict", help="predict image files with a trained run")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    add_runs_dir(p)
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP, GIF): a digit, as a photo or drawing")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="why a run's model read an image so: a heatmap per image (JSON)")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    add_runs_dir(p)
    p.add_argument("--model", choices=("cnn", "baseline"), default="cnn", help="which of the run's models (default cnn)")
    p.add_argument("--method", choices=("gradxinput", "saliency", "smoothgrad", "gradcam"),
                   help="default: gradient × input, the most faithful by the deletion test")
    p.add_argument("--target", type=int, help="explain this class (index) instead of the predicted one")
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")
    p.add_argument("images", nargs="+", help="image files, read as `predict` reads them")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("runs", help="list runs: id, status, dataset, epochs, test accuracy, name")
    add_runs_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs instead of text")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("evaluate", help="re-evaluate a run's models on the test set")
    p.add_argument("--run", required=True, help="the run id (see `cnnkit runs`)")
    add_runs_dir(p)
    add_data_dir(p)
    p.add_argument("--write", action="store_true", help="store the predictions again (a damaged file)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("download", help="download a dataset into the Keras cache (needs internet)")
    p.add_argument("dataset", choices=DATASET_NAMES, help="the dataset to download")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("reproduce", help="train the classic presets with their published recipes")
    p.add_argument("--preset", action="append", help="only this preset (repeatable)")
    p.add_argument("--quick", action="store_true", help="small subsets and 1 epoch: a smoke test")
    add_data_dir(p)
    add_runs_dir(p)
    p.add_argument("--precision", choices=("float32", "auto"), default="float32",
                   help="float32 (default) as the articles trained; auto: the app's bfloat16 speed-up")
    p.add_argument("--output", help="also write the markdown table to this file")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("bench", help="benchmarks: training throughput, prediction latency, memory")
    p.add_argument("which", nargs="*", default=["all"],
                   help="all (the default: throughput, latency, memory, dashboard, startup) or names, "
                        "also levers, hostile, hostile-keras, explain, augmentation, stop, sweeps (docs/PERFORMANCE.md)")
    add_data_dir(p)
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes: a smoke test")
    p.add_argument("--against", metavar="REV", help="live, draw: also measure this git revision's app, taking turns")
    p.add_argument("--output", help="also write the markdown report to this file")
    p.set_defaults(func=cmd_bench)

    from cnnkit.cli.models import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, SpecError, CnnkitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for people; CNNKIT_DEBUG=1 for developers
        if is_disk_full(exc):
            print("error: the disk is full; free some space (delete old runs) and try again", file=sys.stderr)
            return EXIT_BAD_INPUT
        if settings.get().debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (set CNNKIT_DEBUG=1 for details; "
              f"{time.perf_counter() - started:.1f} s)", file=sys.stderr)
        return 1
