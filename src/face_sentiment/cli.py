"""Command line: `python -m face_sentiment <command>` (also installed as `face-sentiment`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODEL_NAMES = "shipped, shipped-int8, shipped-ferplus[-int8], fer, fer-tflite"
TTA_CHOICES = ("none", "flip", "crop5", "crop10")  # evaluation.ensemble.TTA_NAMES (cv2-free here)


def _data(args) -> int:
    from face_sentiment.data.cache import build_cache
    build_cache(args.source, args.ferplus, force=args.force)
    return 0


def _validate(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.data.validation import run_validation, statistics_table
    result = run_validation(load_dataset(verbose=True), args.beam_args, args.update_schema)
    with _wide_pandas():
        print(statistics_table(result.statistics).round(3).to_string(index=False))
        if result.ok:
            print("validation passed: no anomalies against the data contract")
            return 0
        print("validation FAILED: anomalies found")
        print(result.table().to_string(index=False))
    return 1


def _transform(args) -> int:
    from face_sentiment.data.transform import fer2013_table, folder_table, run_transform
    from face_sentiment.preprocessing import PreprocessingSpec
    from face_sentiment.profiles import load_profile
    spec = PreprocessingSpec.from_dict(
        load_profile(args.profile)["training"].get("preprocessing", {}))
    if args.dataset in (None, "fer2013"):
        from face_sentiment.data.cache import load_dataset
        table = fer2013_table(load_dataset(verbose=True))
    else:
        from face_sentiment.data.folder_dataset import KNOWN_DATASETS, locate
        path = locate(args.dataset) if args.dataset in KNOWN_DATASETS else args.dataset
        table = folder_table(path, args.detector)
    run_transform(table, spec, args.out, args.beam_args, args.force)
    # protobuf's C++ extension can crash the interpreter at exit after a TFT pipeline; the
    # outputs are renamed into place by now, so main() ends the process with this status.
    args.hard_exit = True
    return 0


def _wide_pandas():
    import pandas as pd
    return pd.option_context("display.width", 200, "display.max_colwidth", 150)


def _train(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.model.training import TrainingConfig, train
    from face_sentiment.paths import runs_dir
    from face_sentiment.profiles import load_profile
    overrides = {name: getattr(args, name, None) for name in  # distill's flags, and --run-name
                 ("run_name", "teachers", "teacher_tta", "distill_temperature", "distill_alpha")}
    settings = load_profile(args.profile)["training"]
    fold = getattr(args, "photo_holdout_fold", None)
    if fold is not None:
        if not settings.get("photo_sets"):
            raise SystemExit(f"error: profile {args.profile} trains on no photo sets, so it "
                             "has no person fold to hold out")
        overrides["photo_holdout_fold"] = fold
        overrides["run_name"] = args.run_name or f"{settings['run_name']}-fold{fold}"
    config = TrainingConfig.from_dict({**settings,
                                       **{k: v for k, v in overrides.items() if v is not None}})
    dataset = load_dataset(verbose=True)
    teacher_targets = None
    if config.teachers:
        from face_sentiment.evaluation.ensemble import TARGETS_FOLDER
        from face_sentiment.evaluation.ensemble import teacher_targets as compute_targets
        from face_sentiment.labels import class_names
        faces, _ = dataset.select("Training", config.label_set)
        teacher_targets = compute_targets(
            list(config.teachers), faces, runs_dir() / TARGETS_FOLDER,
            dataset.data_hash, config.teacher_tta, class_names(config.label_set), verbose=True)
    best = train(dataset, config, teacher_targets=teacher_targets)
    print(f"best model: {best}")
    return 0


def _train_speed(args) -> int:
    from face_sentiment.model.training import TrainingConfig
    from face_sentiment.model.training_speed import OPTIONS, speed_table
    from face_sentiment.profiles import load_profile
    config = TrainingConfig.from_dict(load_profile(args.profile)["training"])
    table = speed_table(config, tuple(args.option or OPTIONS), args.steps, rounds=args.rounds)
    print(f"profile {args.profile}, batch {config.batch_size}, fastest of {args.rounds} "
          f"round(s) of {args.steps} timed steps each")
    print(table.round(2).to_string())
    return 0


def _export(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import export_run
    result = export_run(load_dataset(), _run_of(args), runs=args.latency_runs)
    with _wide_pandas():
        import pandas as pd
        print(f"latency with {result['runtime']}")
        print(pd.DataFrame(result["variants"]).round(4).to_string(index=False))
        print("fer TFLite latency:",
              {k: round(v, 3) for k, v in result["fer_tflite_latency"].items()})
        print("\nint8 vs fer, 1 thread, per runtime (target: <= 1.5x fer):")
        print(pd.DataFrame(result["runtimes"]).round(3).to_string(index=False))
    return 0


def _evaluate(args) -> int:
    if args.dataset:
        return _evaluate_dataset(args)
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import evaluate_run
    result = evaluate_run(load_dataset(), _run_of(args), tta=args.tta)
    _print_metrics(result["metrics"])
    for name, ab in result["ab"].items():
        print(f"A/B {name}: diff {100 * ab['difference']:+.2f} pts "
              f"[{100 * ab['ci_low']:+.2f}, {100 * ab['ci_high']:+.2f}], "
              f"McNemar p={ab['mcnemar_p']:.2g}, promote {ab['name_b']}: {ab['promote_b']}")
    return 0


def _print_tables(tables: dict) -> None:
    with _wide_pandas():
        for title, table in tables.items():
            print(f"\n== {title}")
            print(table.round(3).to_string())


def _evaluate_dataset(args) -> int:
    from face_sentiment.evaluation.cross_dataset import report
    _print_tables(report(args.dataset, args.model or ["shipped", "fer"], args.aggregate_by,
                         args.cluster, args.detector, args.crops or None, args.held_out,
                         args.adapt_priors, args.cross_validated))
    return 0


def _bias_audit(args) -> int:
    from face_sentiment.responsible.bias_audit import report
    _print_tables(report(args.dataset, args.model or ["shipped", "fer"], args.attribute,
                         args.cluster, args.resamples, args.permutations, args.seed))
    return 0


def _print_metrics(metrics: dict) -> None:
    import pandas as pd
    rows = [{"model": model, "set": name, **{k: v for k, v in values.items() if k != "accuracy_ci"},
             "ci": f"[{100 * values['accuracy_ci'][0]:.2f}, {100 * values['accuracy_ci'][1]:.2f}]"}
            for model, sets in metrics.items() for name, values in sets.items()]
    with _wide_pandas():
        print(pd.DataFrame(rows).round(4).to_string(index=False))


def _run_of(args) -> str:
    """The run named by --run, else the run the profile trains."""
    from face_sentiment.profiles import load_profile
    return args.run or load_profile(args.profile)["training"]["run_name"]


def _ship(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.release import ship
    from face_sentiment.profiles import load_profile, ship_folder
    from face_sentiment.reports import git_commit
    target = ship_folder(load_profile(args.profile))
    print(f"wrote {ship(load_dataset(), _run_of(args), git_commit(), target, args.profile)}")
    return 0


def _keep(args) -> int:
    from face_sentiment.evaluation.release import keep_run
    from face_sentiment.paths import models_dir
    target = Path(args.to) if args.to else models_dir() / "teachers" / args.run
    print(f"wrote {keep_run(args.run, target, args.description)}")
    return 0


def _ab_test(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.ab_testing import compare
    from face_sentiment.evaluation.predictors import load_predictor
    from face_sentiment.labels import LABEL_SETS
    a, b = load_predictor(args.champion), load_predictor(args.challenger)
    if args.dataset:
        return _ab_test_dataset(args, a, b)
    # Two FER+ models are compared on FER+ labels (their selection split's own labels); any
    # other pair on FER2013's, where indices 0-6 mean the same under both label sets.
    label_set = next((name for name, classes in LABEL_SETS.items()
                      if tuple(a.classes) == tuple(b.classes) == classes), "fer2013")
    images, labels = load_dataset().select(args.split, label_set)
    print(f"{args.split}, {label_set} labels, {len(labels)} faces")
    result = compare(labels, a.predict(images).argmax(1), b.predict(images).argmax(1),
                     a.name, b.name, seed=args.seed)
    for key, value in result.to_dict().items():
        print(f"{key:>16}: {value}")
    if args.split != "PublicTest":
        print("note: promotion decisions use PublicTest; this split is for reporting only")
    return 0


def _ab_test_dataset(args, a, b) -> int:
    """ab-test on a labelled folder: both models on the same faces, people resampled."""
    from face_sentiment.data.folder_dataset import load_named
    from face_sentiment.data.photos import PERSON_COLUMNS
    from face_sentiment.evaluation import cross_dataset as cd
    from face_sentiment.evaluation.ab_testing import compare

    dataset = load_named(args.dataset)
    if args.held_out:
        dataset = cd.held_out_subset(dataset, args.held_out)
    crops = cd.dataset_faces(dataset)
    first, second = cd.score(a, dataset, crops), cd.score(b, dataset, crops)
    column = PERSON_COLUMNS.get(dataset.name)
    clusters = first.table[column].to_numpy() if column else None
    print(f"{dataset.name}, {len(first.labels)} faces"
          + (f" of {len(set(clusters))} people (resampled by {column})" if column else ""))
    result = compare(first.labels, first.predicted, second.predicted, a.name, b.name,
                     seed=args.seed, clusters=clusters)
    for key, value in result.to_dict().items():
        print(f"{key:>16}: {value}")
    return 0


def _ensemble(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.ensemble import export_ensemble, load_ensemble, score_ensemble
    dataset = load_dataset()
    faces, labels = dataset.select(args.split)
    ensemble = load_ensemble(args.models, args.tta, weights=args.weights)
    table = score_ensemble(ensemble, faces, labels, args.resamples)
    with _wide_pandas():
        print(f"{args.split}, {len(labels)} faces, tta {args.tta}")
        print(table.round(4).to_string(index=False))
    ab = table.attrs["ab"]
    print(f"A/B ensemble vs {ab.name_a}: diff {100 * ab.difference:+.2f} pts "
          f"[{100 * ab.ci_low:+.2f}, {100 * ab.ci_high:+.2f}], McNemar p={ab.mcnemar_p:.2g}")
    if args.split == "PrivateTest":
        print("note: choose ensembles on PublicTest; PrivateTest is for reporting only")
    if args.export:
        training, _ = dataset.select("Training")
        path = export_ensemble(args.models, args.export, training, flip=args.tta == "flip",
                               weights=args.weights)
        print(f"wrote {path} and its model card (one graph, {len(args.models)} members)")
    return 0


def _robustness(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.evaluation.predictors import load_predictors
    from face_sentiment.evaluation.robustness import PERTURBATIONS, accuracy_curves, sample_split
    unknown = set(args.perturbation or ()) - set(PERTURBATIONS)
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(sorted(unknown))}; use "
                         f"{', '.join(PERTURBATIONS)}")
    faces, labels = sample_split(load_dataset(), args.split, args.images, args.seed)
    chosen = {name: PERTURBATIONS[name] for name in (args.perturbation or PERTURBATIONS)}
    curves = accuracy_curves(load_predictors(args.models), faces, labels, chosen, args.seed)
    models, ladder = (list(dict.fromkeys(curves.model)),
                      list(dict.fromkeys(zip(curves.perturbation, curves.level, strict=True))))
    table = (curves.set_index(["perturbation", "level", "model"])["accuracy"]
             .unstack("model").reindex(ladder)[models])
    with _wide_pandas():
        print(f"{args.split}, {len(labels)} faces: accuracy under each perturbation level")
        print(table.round(4).to_string())
        means = curves.groupby(["perturbation", "model"], sort=False)["accuracy"].mean()
        print("\nmean accuracy over each ladder (the clean level included)")
        print(means.unstack("model").reindex(list(chosen))[models].round(4).to_string())
    if args.split == "PrivateTest":
        print("note: choose on PublicTest; PrivateTest is for reporting only")
    return 0


def _report(args) -> int:
    from pathlib import Path

    from face_sentiment.reports import ReportError, build_report
    try:
        for written in build_report(Path(args.notebook), args.profile, pdf=not args.no_pdf):
            print(f"wrote {written}")
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _report_index(args) -> int:
    from face_sentiment.data.cache import load_dataset
    from face_sentiment.reports import write_index
    print(f"wrote {write_index(args.profile, load_dataset().data_hash)}")
    return 0


def _prepare_notebooks(args) -> int:
    from pathlib import Path

    from face_sentiment.reports import prepare_notebooks
    for path in prepare_notebooks(args.profile, Path(args.out)):
        print(f"prepared {path}")
    return 0


def _run_dir(args) -> int:
    """runs/<run_name> of the resolved profile, for the Makefile: pyyaml only, no TensorFlow."""
    from face_sentiment.profiles import run_folder
    print(run_folder(args.profile))
    return 0


def _predict(args) -> int:
    from face_sentiment.live.predict import run
    return run(args)


def _monitor(args) -> int:
    from face_sentiment.monitoring.command import run
    if args.from_store is not None or any(r.split(":", 1)[0] == "store"
                                          for r in args.reference or []):
        from face_sentiment.features.windows import monitor_inputs
        args = monitor_inputs(args)  # store windows -> JSON-lines in the report folder
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face-sentiment", description=__doc__)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow/absl log lines and library warnings (hidden "
                             "by default)")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="build the canonical cache in data/interim")
    data.add_argument("--source", help="FER2013 file or folder (default: $FER2013_PATH, data/raw)")
    data.add_argument("--ferplus", help="fer2013new.csv (default: $FERPLUS_PATH, data/raw)")
    data.add_argument("--force", action="store_true", help="rebuild even if up to date")
    data.set_defaults(handler=_data)
    validate = commands.add_parser(
        "validate", help="TFDV: statistics, schema check, drift and skew; exit 1 on anomalies")
    validate.add_argument("--beam-args", default="",
                          help="Apache Beam pipeline options, e.g. '--runner=FlinkRunner "
                               "--flink_master=host:8081' (default: DirectRunner)")
    validate.add_argument("--update-schema", action="store_true",
                          help="re-infer and curate the committed schema from Training first")
    validate.set_defaults(handler=_validate)
    transform = commands.add_parser(
        "transform", help="TF Transform (Beam): a dataset -> data/processed/<name>/ "
                          "(TFRecords, transform_fn, metadata, manifest)")
    transform.add_argument("--dataset", help="fer2013 (default), a known folder dataset "
                                             "(ckplus, taiwan) or a labelled folder/zip path")
    transform.add_argument("--profile", default="full", help="whose preprocessing to use")
    transform.add_argument("--out", help="output folder (default: data/processed/<name>)")
    transform.add_argument("--beam-args", default="",
                           help="Apache Beam pipeline options (default: DirectRunner)")
    transform.add_argument("--detector", default="blazeface-full",
                           help="face detector for photographs")
    transform.add_argument("--force", action="store_true", help="rerun even if up to date")
    transform.set_defaults(handler=_transform)
    train = commands.add_parser("train", help="train a model with a profile's settings")
    train.add_argument("--profile", default="full")
    train.add_argument("--run-name")
    train.add_argument("--photo-holdout-fold", type=int, metavar="K",
                       help="a profile with photo_sets: hold out person fold K instead (the "
                            "other folds of a cross-validation); the run is named "
                            "<run_name>-fold<K> unless --run-name is given")
    train.set_defaults(handler=_train)
    distill = commands.add_parser(
        "distill", help="train a profile's student on teachers' soft targets (their flip- or "
                        "crop-averaged probabilities on Training, cached in runs/teacher_targets/)")
    distill.add_argument("--teachers", nargs="+", metavar="MODEL",
                         help=f"teacher models: {MODEL_NAMES}, or paths (default: the "
                              "profile's teachers)")
    distill.add_argument("--profile", default="distill")
    distill.add_argument("--run-name")
    distill.add_argument("--teacher-tta", choices=TTA_CHOICES)
    distill.add_argument("--distill-temperature", type=float, metavar="T")
    distill.add_argument("--distill-alpha", type=float, metavar="A",
                         help="weight of the hard-label term (1 - A: the teachers')")
    distill.set_defaults(handler=_train)
    from face_sentiment.model.training_speed import OPTIONS  # standard library only
    speed = commands.add_parser("train-speed", help="seconds per training epoch of a "
                                "profile's network: default, XLA, mixed bfloat16, no augmentation")
    speed.add_argument("--profile", default="full")
    speed.add_argument("--option", action="append", choices=OPTIONS,
                       help="repeatable (default: all)")
    speed.add_argument("--steps", type=int, default=30, help="timed steps per option")
    speed.add_argument("--rounds", type=int, default=3,
                       help="time every option this many times, keep the fastest")
    speed.set_defaults(handler=_train_speed)
    for name, handler, text in (
            ("export", _export, "TFLite variants of a run + size/accuracy/latency table"),
            ("evaluate", _evaluate, "metrics with CIs for the run, its int8 export and fer"),
            ("ship", _ship, "copy the int8 model to models/ and write the model card")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--profile", default="full",
                             help="profile whose run to use (and, for ship, its ship_to folder)")
        command.add_argument("--run", help="a run in runs/ (default: the profile's run_name)")
        command.set_defaults(handler=handler)
        if name == "export":
            command.add_argument("--latency-runs", type=int, default=300)
        if name == "evaluate":
            command.add_argument("--tta", action="store_true", help="also flip-averaged int8")
            command.add_argument("--dataset", help="instead: a labelled folder dataset (dir or "
                                 "zip with labels.csv: path,label[,attributes], or a known "
                                 "dataset's name: ckplus, taiwan, lfw_expressions) to score")
            command.add_argument("--model", action="append", help="with --dataset: a model name "
                                 f"({MODEL_NAMES}) or a .keras/.tflite path; repeatable "
                                 "(default: shipped and fer)")
            command.add_argument("--aggregate-by", nargs="+", metavar="COLUMN",
                                 help="with --dataset: average frames per group, e.g. "
                                      "subject sequence (CK+)")
            command.add_argument("--cluster", metavar="COLUMN",
                                 help="with --dataset: bootstrap by this column, e.g. subject")
            command.add_argument("--detector", default="blazeface-full",
                                 help="face detector for photographs (face_sentiment.live.faces)")
            command.add_argument("--crops", action="store_true",
                                 help="with --dataset: every image is one face crop (searched "
                                      "with a margin, else taken whole)")
            command.add_argument("--held-out", metavar="PROFILE_OR_MODEL",
                                 help="with --dataset (a photo set this profile or model, e.g. "
                                      "shipped, trained on): score only the people of its "
                                      "held-out fold")
            command.add_argument("--cross-validated", nargs="+", metavar="MODEL",
                                 help="with --dataset: the fold models of one photo split "
                                      "(shipped first), scored as one model: each person by "
                                      "the fold model that never saw them")
            command.add_argument("--adapt-priors", action="store_true",
                                 help="with --dataset: also score each model with its class "
                                      "priors re-estimated on the dataset's faces by EM "
                                      "(label shift; Saerens et al. 2002)")
    keep = commands.add_parser(
        "keep", help="keep a run's network (inference copy, history, card) as an ensemble "
                     "member or teacher, in models/teachers/<run>/")
    keep.add_argument("run", help="a run in runs/")
    keep.add_argument("--to", metavar="FOLDER", help="instead of models/teachers/<run>/")
    keep.add_argument("--description", required=True, help="why it is kept (goes in its card)")
    keep.set_defaults(handler=_keep)
    ab = commands.add_parser("ab-test", help="McNemar + bootstrap CI: champion vs challenger")
    ab.add_argument("champion", help=f"a model name ({MODEL_NAMES}) or a .keras/.tflite path")
    ab.add_argument("challenger")
    ab.add_argument("--split", default="PublicTest", choices=("PublicTest", "PrivateTest"))
    ab.add_argument("--seed", type=int, default=0)
    ab.add_argument("--dataset", help="instead of FER2013: a labelled folder or a known "
                                      "dataset's name (lfw_expressions, taiwan, ckplus)")
    ab.add_argument("--held-out", metavar="PROFILE_OR_MODEL",
                    help="with --dataset: only the people this profile or model never "
                         "trained on")
    ab.set_defaults(handler=_ab_test)
    bias = commands.add_parser("bias-audit", help="per-group metrics and gap tests "
                               "(bootstrap CI, permutation p) for models side by side")
    bias.add_argument("dataset", help="labelled folder dataset (dir or zip with labels.csv) "
                                      "or 'fer2013' (PrivateTest by image condition)")
    bias.add_argument("--model", action="append",
                      help=f"a model name ({MODEL_NAMES}) or a path; repeatable "
                           "(default: shipped and fer)")
    bias.add_argument("--attribute", action="append",
                      help="labels.csv column to audit; repeatable (default: every column "
                           "with 2-10 values)")
    bias.add_argument("--cluster", help="column naming the person in each image: resample "
                                        "and permute people, not images")
    bias.add_argument("--resamples", type=int, default=1000)
    bias.add_argument("--permutations", type=int, default=1000)
    bias.add_argument("--seed", type=int, default=0)
    bias.set_defaults(handler=_bias_audit)
    ensemble = commands.add_parser(
        "ensemble", help="average models' probabilities (optionally with flip or multi-crop "
                         "TTA), scored with intervals; --export writes one int8 TFLite graph")
    ensemble.add_argument("models", nargs="+", metavar="MODEL",
                          help=f"{MODEL_NAMES}, a run's best.keras or a .tflite with its card")
    ensemble.add_argument("--tta", default="none", choices=TTA_CHOICES)
    ensemble.add_argument("--weights", nargs="+", type=float, help="one per model (default: equal)")
    ensemble.add_argument("--split", default="PublicTest",
                          choices=("PublicTest", "PrivateTest", "Training"))
    ensemble.add_argument("--resamples", type=int, default=10_000)
    ensemble.add_argument("--export", metavar="OUT.tflite",
                          help="Keras members only: one int8 graph averaging them (flip inside "
                               "when --tta flip), with model_card.json beside it")
    ensemble.set_defaults(handler=_ensemble)
    robustness = commands.add_parser(
        "robustness", help="accuracy of models under image degradations (brightness, gamma, "
                           "contrast, noise, blur, JPEG, resolution) at fixed levels")
    robustness.add_argument("models", nargs="+", metavar="MODEL",
                            help=f"{MODEL_NAMES}, a run's best.keras or a .tflite with its card")
    robustness.add_argument("--split", default="PublicTest",
                            choices=("PublicTest", "PrivateTest"))
    robustness.add_argument("--images", type=int, help="a seeded random subset of the split")
    robustness.add_argument("--perturbation", action="append",
                            help="only this one; repeatable (default: all)")
    robustness.add_argument("--seed", type=int, default=0)
    robustness.set_defaults(handler=_robustness)
    report = commands.add_parser("report", help="execute one notebook -> reports/ HTML + PDF")
    report.add_argument("notebook")
    report.add_argument("--profile", default="full")
    report.add_argument("--no-pdf", action="store_true")
    report.set_defaults(handler=_report)
    index = commands.add_parser("report-index", help="write reports/index.html")
    index.add_argument("--profile", default="full")
    index.set_defaults(handler=_report_index)
    prepare = commands.add_parser(
        "prepare-notebooks", help="inject a profile's parameters without executing (for nbval)")
    prepare.add_argument("--profile", default="ci")
    prepare.add_argument("--out", default="build/nbval")
    prepare.set_defaults(handler=_prepare_notebooks)
    run_dir = commands.add_parser(
        "run-dir", help="print a profile's run folder (runs/<run_name>, relative to the project)")
    run_dir.add_argument("--profile", default="full")
    run_dir.set_defaults(handler=_run_dir)
    monitor = commands.add_parser(
        "monitor", help="drift of the runner's logged faces against FER2013 or a reference "
                        "log, per window (HTML + JSON); exit 1 on drift")
    from face_sentiment.monitoring.command import add_arguments as monitor_arguments
    monitor_arguments(monitor)
    monitor.set_defaults(handler=_monitor)
    features = commands.add_parser(
        "features", help="the Feast feature store (features/): apply, ingest FER2013, batches "
                         "and runner logs, materialize, point-in-time training sets, online")
    from face_sentiment.features.command import add_arguments as feature_arguments
    feature_arguments(features)
    from face_sentiment.pipeline import command as pipeline  # TensorFlow-free
    for name, text, add, handler in (
            ("retrain", "continual training: new labelled batch -> validate -> fine-tune the "
             "champion -> A/B test -> promote into the registry -> deploy (resumable)",
             pipeline.add_retrain_arguments, pipeline.run_retrain),
            ("rollback", "make the registry's previous model current again and deploy it",
             pipeline.add_rollback_arguments, pipeline.run_rollback),
            ("deploy", "copy the registry's current model to the deploy targets",
             pipeline.add_deploy_arguments, pipeline.run_deploy)):
        command = commands.add_parser(name, help=text)
        add(command)
        command.set_defaults(handler=handler)
    from face_sentiment.live.predict import add_arguments  # TensorFlow-free
    predict = commands.add_parser(
        "predict", help="expression of every face in photos, folders and videos (JSON or CSV)")
    add_arguments(predict)
    predict.set_defaults(handler=_predict)
    return parser


def _join_option_values(argv: list[str], options: tuple[str, ...] = ("--beam-args",)
                        ) -> list[str]:
    """`--beam-args --runner=X` -> `--beam-args=--runner=X`: argparse would read the value,
    which starts with '--', as an option of its own."""
    joined, index = [], 0
    while index < len(argv):
        if argv[index] in options and index + 1 < len(argv):
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


# What an installed wheel runs (numpy, OpenCV, LiteRT: pyproject's dependencies); the other
# commands need the workbench's packages (pandas, TensorFlow, ...: requirements.lock).
RUNTIME_COMMANDS = ("predict",)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_option_values(sys.argv[1:] if argv is None else argv))
    if not args.verbose:
        _quiet()
    try:
        code = args.handler(args)
        if getattr(args, "hard_exit", False) and argv is None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        missing = error.name or "a module"
        if args.command in RUNTIME_COMMANDS or missing.split(".")[0] == "face_sentiment":
            raise  # a broken install or a bug, not a missing workbench
        print(f"error: {args.command} needs the workbench ({missing} is not installed): clone "
              "the repository and run make setup", file=sys.stderr)
        return 2
    except Exception as error:
        if not isinstance(error, _user_errors()):
            raise  # a bug: keep its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


# Errors that mean "this input, model or setup is not usable" and say what to do: one line on
# stderr and exit 2. (module, class): looked up only in modules already imported, since an error
# of a module that was never imported cannot have been raised.
USER_ERRORS = (("face_sentiment.model_card", "ModelFileError"),
               ("face_sentiment.live.frame_sources", "SourceError"),
               ("face_sentiment.live.analyzer", "PredictError"),
               ("face_sentiment.reports", "ReportError"),
               ("face_sentiment.monitoring.logs", "LogError"),
               ("face_sentiment.pipeline.deploy", "DeployError"))


def _user_errors() -> tuple[type[BaseException], ...]:
    found = [FileNotFoundError, ValueError]  # DataError, DatasetError, DataNotFoundError too
    for module, name in USER_ERRORS:
        error_type = getattr(sys.modules.get(module), name, None)
        if error_type is not None:
            found.append(error_type)
    return tuple(found)


def _quiet() -> None:
    """Hide TensorFlow's C++ log lines, absl's and library warnings (before any is imported):
    `--verbose` keeps them."""
    import importlib.util
    import logging
    import os
    import warnings
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("FACE_SENTIMENT_QUIET", "1")  # live.interpreter.QUIET_ENV
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="(keras|tensorflow|absl)")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if importlib.util.find_spec("absl") is not None:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
