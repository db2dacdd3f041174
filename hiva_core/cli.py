"""`hiva_core` command line: a thin layer over the library (each command parses options and calls one function)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from augtext.cliutil import run_app
from augtext.errors import UserError

app = typer.Typer(
    help="Train, evaluate and run the HiVA facial Action Unit detector.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AUS_HELP = (
    "Score these AUs (e.g. 9,25,26) instead of the run's own. AUs it was not trained on need an "
    "open-vocabulary run (--model hiva_open) and --text-cache."
)
TEXT_CACHE_HELP = "augtext cache with the descriptions of --aus the run was not trained on (same embedding model)."
THRESHOLD_HELP = (
    "Probability at or above which an AU counts as present, for every AU (0.5 restores the plain rule), or a "
    "thresholds file from `eval --save-thresholds` (per AU); default: the run's per-AU thresholds, chosen on "
    "validation rows at training (0.5 where it has none)."
)
FLIP_HELP = (
    "Average each face's AU probabilities (and maps) with those of its mirror image: test-time flip, twice the "
    "model's time; measured +0.4-0.6 AUC on SynthAU (README, Evaluation)."
)

synth_app = typer.Typer(help="Render SynthAU: labelled synthetic faces from the ICT-FaceKit model.")
app.add_typer(synth_app, name="synth")


@synth_app.callback(invoke_without_command=True)
def synth(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, help="Output folder (images + manifest.csv)."),
    n: int = typer.Option(1000, "--n", help="Number of faces to render."),
    size: int = typer.Option(128, help="Image size in pixels."),
    seed: int = typer.Option(0, help="Seed: the same seed renders the same faces."),
    face_model: Path | None = typer.Option(None, help="ICT-FaceKit npz (default: $HIVA_FACE_MODEL or ../shared)."),
    workers: int = typer.Option(1, help="Render processes."),
    shifted: bool = typer.Option(False, help="Render the shifted test split (harder pose and light, new people)."),
    msaa: int = typer.Option(4, help="Anti-aliasing samples per pixel of the face outline (0 = off)."),
    labels: str = typer.Option(
        "bp4d:2,posed:1",  # hiva_core.synth.sampling.DEFAULT_LABELS (tested equal; the CLI stays light to import)
        help="How each face's AUs are drawn: bp4d (real BP4D label rows: their rates and co-occurrence), independent "
        "(every AU on its own at the same rates), posed (a basic emotion's FACS prototype or a variant, or neutral), "
        "or a mix with weights (each face draws its kind). The default, two faces in three with BP4D rows and one "
        "posing, transfers best to faces posing an expression. The people and scenes are the same whichever.",
    ),
    factors: str = typer.Option(
        "all",
        help="Factors of variation that are on: all, none (the old narrow SynthAU), a list (pose,lighting) or all "
        "minus some (-occluders,-pose). Factors: identity, skin, creases, hair, occluders, lighting, camera, "
        "intensity, pose, degradations.",
    ),
    neutral: bool = typer.Option(
        False,
        "--neutral",
        help="Also render each face's neutral frame (the same person at rest, the head a few degrees off): what a "
        "model trained with --set model.reference=true reads each face beside. Adds them to an existing set.",
    ),
) -> None:
    """Render N labelled faces (resumable), or run a subcommand."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise UserError("hiva_core synth needs --out DIR (or a subcommand such as import-ict)")
    from hiva_core.synth import run_synth

    run_synth(
        out=out,
        n=n,
        size=size,
        seed=seed,
        face_model=face_model,
        workers=workers,
        shifted=shifted,
        msaa=msaa,
        factors=factors,
        labels=labels,
        neutral=neutral,
    )


@synth_app.command("import-ict")
def synth_import_ict(
    src: Path = typer.Argument(..., help="The upstream ICT-FaceKit FaceXModel folder (OBJ files)."),
    out: Path = typer.Option(Path("ict_facekit_light.npz"), help="Output npz."),
    partial: bool = typer.Option(False, help="Convert whatever shapes the folder holds instead of requiring all."),
) -> None:
    """Convert the upstream ICT-FaceKit OBJ folder into the npz face model."""
    from hiva_core.synth.import_ict import import_ict

    import_ict(src, out, partial=partial)


@app.command()
def train(
    text_cache: Path | None = typer.Option(None, help="augtext cache directory (the text prior)."),
    data: str | None = typer.Option(None, help="Manifest .csv/.parquet, SynthAU folder, or bp4d:|disfa:|gft:ROOT."),
    out: Path | None = typer.Option(None, help="Run folder, e.g. runs/NAME."),
    lists: Path | None = typer.Option(None, help="Folder of list files for bp4d:/disfa:/gft: data."),
    model: str | None = typer.Option(None, help="Registered model name (hiva, hiva_no_text, linear, ...)."),
    backbone: str | None = typer.Option(None, help="Backbone (resnet50, convnext_tiny, mobilenetv2, tiny, ...)."),
    pretrained: bool | None = typer.Option(
        None,
        "--pretrained/--no-pretrained",
        help="ImageNet weights: timm's hub (online), or the offline file for mobilenetv2.",
    ),
    backbone_weights: Path | None = typer.Option(None, help="Local backbone weights (.pth/.safetensors)."),
    fold: int | None = typer.Option(None, help="Fold to hold out (train on the others)."),
    folds: str | None = typer.Option(None, help="'all' to train and evaluate every fold."),
    epochs: int | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    lr: float | None = typer.Option(None),
    image_size: int | None = typer.Option(None),
    config: Path | None = typer.Option(None, help="YAML config; command-line options override it."),
    resume: bool = typer.Option(False, "--resume", help="Continue from runs/NAME/last checkpoint."),
    set_: list[str] | None = typer.Option(None, "--set", help="Any config key: --set section.key=value"),
) -> None:
    """Train a HiVA model on labelled faces with the text prior."""
    import sys

    from hiva_core.config import resolve_config
    from hiva_core.distributed import env_world
    from hiva_core.metrics import format_table
    from hiva_core.train import resume_config, run_train
    from hiva_core.views import cli_words, format_fold_summary, train_result_line

    if out is None:
        raise UserError("hiva_core train needs --out runs/NAME")
    all_folds = _all_folds(fold, folds)
    options = {
        "text.cache": text_cache,
        "data.spec": data,
        "data.lists": lists,
        "model.name": model,
        "model.backbone": backbone,
        "model.pretrained": pretrained,
        "model.backbone_weights": backbone_weights,
        "data.fold": fold,
        "train.epochs": epochs,
        "train.batch_size": batch_size,
        "optim.lr": lr,
        "data.image_size": image_size,
    }
    base = resume_config(out, all_folds) if resume else None
    cfg = resolve_config(config, options, set_ or (), base=base)
    try:
        result = run_train(cfg, out, resume=resume, all_folds=all_folds)
    except UserError as exc:  # the library's messages name its keyword arguments: name the options instead
        raise UserError(cli_words(str(exc))) from exc

    runs = result["folds"].values() if all_folds else [result]
    unfinished = []
    for r in runs:  # rank 0 of a finished run; other ranks hold no metrics
        if r["metrics"] is not None and r["finished"]:
            # The trainer scores the test split at 0.5; eval and predict use the run's per-AU thresholds if it has any.
            print(f"\n{train_result_line(r)}\n")
            print(format_table(r["metrics"]))
        elif not r["finished"]:
            unfinished.append(r["out"])
    if unfinished and env_world().is_main:  # train.stop_after ended it: a script must not take it for a result
        resume = f"--folds all --resume --out {out}" if all_folds else "--resume"
        print(
            f"{', '.join(unfinished)}: stopped before epoch {cfg.train.epochs} (train.stop_after); `hiva_core train "
            f"{resume}` continues{' (no summary.json until every fold finishes)' if all_folds else ''}",
            file=sys.stderr,
        )
    if all_folds and result["summary"] is not None:
        summary = result["summary"]
        mean = 100 * summary["mean"]["avg"]["f1"]
        print(
            f"\n{out}: {len(result['folds'])} folds, avg F1 at 0.5 {mean:.1f} (each AU's F1 averaged over the folds, "
            "then over the AUs; the table below, at 0.5)\n"
        )
        print(format_fold_summary(summary))


@app.command("neutral")
def neutral_(
    data: str = typer.Option(..., help="bp4d:|disfa:|gft:ROOT (with --lists), a manifest, or a SynthAU folder."),
    lists: Path | None = typer.Option(None, help="Folder of list files for bp4d:/disfa:/gft: data."),
    split: str = typer.Option("train", help="List files: the split (train or test); a manifest: all its rows."),
    fold: int | None = typer.Option(None, help="List files: the fold (default 1)."),
    run: Path | None = typer.Option(
        None,
        help="Choose each clip's resting frame by this run's reading of each face alone (the least expressive), not "
        "by the labels: for frames you test on. A run without model.reference, or one with model.reference_dropout.",
    ),
    out: Path | None = typer.Option(
        None,
        help="A manifest: the new manifest to write (.csv or .parquet), a copy with a `neutral` column. List files "
        "get <DATASET>_<split>_neutral_fold<k>.txt beside the path list, read with them from then on.",
    ),
    clip: str = typer.Option(
        "sequence",
        help="What one clip is: 'sequence' (the frames of one subject and sequence, e.g. a BP4D task) or 'subject' "
        "(all of a subject's frames: the resting frame may come from another of their sequences).",
    ),
    batch_size: int = typer.Option(64),
    device: str | None = typer.Option(None, help="auto (default), cpu, cuda, cuda:N or mps."),
    align: bool | None = typer.Option(
        None,
        "--align/--no-align",
        help="With --run: detect and align the faces first (default: as the run was trained).",
    ),
) -> None:
    """Each frame's neutral frame, for a run with model.reference on data without them: the resting frame of its
    clip (same subject and sequence), the frame with the fewest AUs present, or with --run the one a run reads as
    least expressive."""
    from hiva_core.neutral import print_summary, run_neutral

    print_summary(
        run_neutral(
            data,
            lists=lists,
            split=split,
            fold=fold,
            run=run,
            out=out,
            clip=clip,
            batch_size=batch_size,
            device=device,
            align=align,
        )
    )


@app.command("eval")
def eval_(
    run: Path = typer.Option(..., help="Run folder written by `hiva_core train`."),
    data: str | None = typer.Option(
        None,
        help="Manifest, SynthAU folder, or bp4d:|disfa:|gft:ROOT (default: the data the run was trained on, from its "
        "config.json: its own test split).",
    ),
    lists: Path | None = typer.Option(None, help="Folder of list files for bp4d:/disfa:/gft: data."),
    fold: int | None = typer.Option(None, help="Fold to evaluate (default: the run's fold)."),
    folds: str | None = typer.Option(None, help="'all': evaluate runs/NAME/fold*/ and report the mean."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    batch_size: int = typer.Option(64),
    aus: str | None = typer.Option(None, help=AUS_HELP),
    text_cache: Path | None = typer.Option(None, help=TEXT_CACHE_HELP),
    threshold: str | None = typer.Option(None, help=THRESHOLD_HELP),
    align: bool | None = typer.Option(
        None,
        "--align/--no-align",
        help="Detect and align the faces first (default: as the run was trained, and also when the faces are "
        "framed unlike the run's template-framed training faces, which it says).",
    ),
    save_thresholds: Path | None = typer.Option(
        None,
        help="Choose per-AU thresholds on these rows (a labelled sample of your domain) and write them to this file, "
        "for --threshold FILE (RUN/thresholds.json makes them the run's own).",
    ),
    flip: bool = typer.Option(False, "--flip", help=FLIP_HELP),
    per_face: Path | None = typer.Option(
        None,
        help="Also write every scored face here (.csv, .parquet or .json): its path, AU<n>_prob, the call AU<n> at "
        "the threshold used and the label AU<n>_label (empty when unknown), to see which faces were missed.",
    ),
) -> None:
    """Per-AU F1 (pooled at the run's per-AU thresholds and at 0.5), average F1, per-AU AUC and the all-positive
    floor; with landmarks in the data (SynthAU), the localisation of the maps (share of present AUs whose map peaks in
    the AU's region). Data without a fold or split column is evaluated whole."""
    from hiva_core.evaluate import run_eval
    from hiva_core.metrics import format_table
    from hiva_core.regions import format_localisation
    from hiva_core.views import eval_header, format_fold_summary

    all_folds = _all_folds(fold, folds)
    result = run_eval(
        run=run,
        data=data,
        lists=lists,
        fold=fold,
        all_folds=all_folds,
        json_out=json_out,
        batch_size=batch_size,
        aus=aus,
        text_cache=text_cache,
        threshold=threshold,
        align=align,
        save_thresholds=save_thresholds,
        flip=flip,
        per_face=per_face,
    )
    print(eval_header(result) + "\n")
    if all_folds:
        print(format_fold_summary(result))
        if result["mean"].get("localisation"):
            print("\nOver all folds (hits and pairs pooled). " + format_localisation(result["mean"]["localisation"]))
    else:
        print(format_table(result))
        if result.get("localisation"):
            print("\n" + format_localisation(result["localisation"]))
        if result.get("saved_thresholds"):
            saved = result["saved_thresholds"]
            print(
                f"\nper-AU thresholds chosen on these {saved['frames']} frames written to {saved['path']} (avg F1 "
                f"there {100 * saved['val_f1']['avg']:.1f}, optimistic: chosen and scored on the same rows); use "
                "them with --threshold FILE on other faces of this domain"
                + (
                    f"; {', '.join(saved['kept_05'])} keep 0.5 (the file's kept_05 says why)"
                    if saved["kept_05"]
                    else ""
                )
            )


@app.command()
def predict(
    inputs: list[Path] = typer.Argument(..., help="Images, folders of images, or videos."),
    run: Path = typer.Option(..., help="Run folder written by `hiva_core train`."),
    out: Path | None = typer.Option(None, help="Results file (.csv, .parquet or .json); default: print a table."),
    heatmaps: Path | None = typer.Option(
        None,
        help="Write per-face AU attention heatmap grids here, each AU captioned with its probability and its call "
        "(present/absent at its threshold, as in --out); nothing is left there if predict fails or is interrupted.",
    ),
    batch_size: int = typer.Option(16, help="Faces per model batch (and frames per detection batch)."),
    threshold: str | None = typer.Option(None, help=THRESHOLD_HELP),
    no_detect: bool = typer.Option(False, "--no-detect", help="Inputs are already aligned face crops: skip detection."),
    device: str | None = typer.Option(None, help="auto (default), cpu, cuda, cuda:N or mps."),
    min_face: float = typer.Option(20.0, help="Smallest face searched for, in pixels (larger is faster)."),
    aus: str | None = typer.Option(None, help=AUS_HELP),
    text_cache: Path | None = typer.Option(None, help=TEXT_CACHE_HELP),
    flip: bool = typer.Option(False, "--flip", help=FLIP_HELP),
    neutral: str | None = typer.Option(
        None,
        help="A photo of the same person at rest, near the faces' pose: what a run trained with "
        "--set model.reference=true reads every face beside. 'auto': each video's own resting frame, the one the "
        "run reading faces alone finds least expressive (a run trained with model.reference_dropout); photos are "
        "read alone.",
    ),
    frames: bool = typer.Option(
        False,
        "--frames",
        help="With --neutral auto: the images of each folder are the frames of one clip (one person, one "
        "recording), read beside the folder's resting frame, not photos read alone.",
    ),
    every: int = typer.Option(
        1, help="Videos: score every N-th frame only (0, N, 2N, ...; rows keep their frame numbers). Default: all."
    ),
) -> None:
    """AU probabilities for new faces: detect, align, predict, and optionally draw heatmaps.

    Frames without a face and unreadable files are reported (rows with status no_face / unreadable and a summary on
    stderr), not fatal; the exit status is 2 only when no input at all could be read."""
    from hiva_core.predict import run_predict
    from hiva_core.views import print_predict_summary, print_predict_table

    result = run_predict(
        inputs=inputs,
        run=run,
        out=out,
        heatmaps=heatmaps,
        batch_size=batch_size,
        threshold=threshold,
        detect=not no_detect,
        device=device,
        min_face=min_face,
        aus=aus,
        text_cache=text_cache,
        flip=flip,
        neutral=neutral,
        frames=frames,
        every=every,
    )
    if out is None:
        print_predict_table(result.rows, result.aus, result.thresholds)
    print_predict_summary(result.summary, out)


@app.command()
def adapt(
    inputs: list[Path] = typer.Argument(None, help="Faces of the new domain: images, folders of images, or videos."),
    run: Path = typer.Option(..., help="Run folder written by `hiva_core train`."),
    out: Path = typer.Option(..., help="New run folder for the adapted model (must not exist, or be empty)."),
    data: str | None = typer.Option(
        None,
        help="Adapt to the rows of this data that `eval` would score instead: a manifest (a `path` column is enough, "
        "no labels needed), SynthAU folder, or bp4d:|disfa:|gft:ROOT.",
    ),
    fold: int | None = typer.Option(None, help="With --data only: the fold whose rows to use (default: as eval)."),
    lists: Path | None = typer.Option(None, help="With --data bp4d:|disfa:|gft:ROOT only: the folder of list files."),
    align: bool | None = typer.Option(
        None, "--align/--no-align", help="With --data only: detect and align the faces first (default: as eval does)."
    ),
    no_detect: bool = typer.Option(
        False, "--no-detect", help="Inputs only (not --data): they are already aligned face crops, skip detection."
    ),
    batch_size: int = typer.Option(64, help="Faces per BatchNorm batch."),
    device: str | None = typer.Option(None, help="auto (default), cpu, cuda, cuda:N or mps."),
    min_face: float | None = typer.Option(
        None,
        help="Inputs searched for faces only (not --data, not --no-detect): smallest face, in pixels (default 20).",
    ),
) -> None:
    """Adapt a run to a new domain without labels: its BatchNorm statistics re-estimated on faces of that domain
    (AdaBN), written as a new run folder for eval, predict and export. Give at least 16 faces, either as inputs or as
    --data; an option for the other way is an error."""
    from hiva_core.adapt import run_adapt

    record = run_adapt(
        run,
        out,
        inputs or [],
        data=data,
        fold=fold,
        lists=lists,
        align=align,
        detect=not no_detect,
        batch_size=batch_size,
        device=device,
        min_face=min_face,
    )
    typer.echo(
        f"wrote {out}: {run} with the statistics of its {record['batchnorm_layers']} BatchNorm layers re-estimated on "
        f"{record['faces']} faces of {record['on']}",
        err=True,
    )


@app.command()
def prepare(
    dataset: str = typer.Argument(
        ..., help="bp4d, disfa, gft, or videos (your own: each video with a label CSV of the same name beside it)."
    ),
    root: Path = typer.Option(..., help="The raw dataset tree."),
    out: Path = typer.Option(..., help="Output folder: aligned crops + list files (videos: + manifest.csv)."),
    workers: int = typer.Option(1, help="Processes (one sequence each at a time)."),
    device: str | None = typer.Option(None, help="Face detector device: auto (default), cpu, cuda, cuda:N."),
    frame_base: int | None = typer.Option(
        None, help="videos: the number a label CSV gives a video's first frame, 0 (default) or 1."
    ),
) -> None:
    """Raw BP4D/DISFA/GFT trees, or your own labelled videos -> aligned 256x256 faces + list files (videos: a
    manifest) + folds (resumable).

    Writes OUT/images/, OUT/lists/ (videos: OUT/manifest.csv) and OUT/prepare_report.csv (frames left out: no face,
    missing, unreadable)."""
    from hiva_core.prepare import run_prepare
    from hiva_core.views import print_prepare_summary

    print_prepare_summary(
        run_prepare(dataset=dataset, root=root, out=out, workers=workers, device=device, frame_base=frame_base)
    )


@app.command()
def export(
    run: Path = typer.Option(..., help="Run folder."),
    onnx: Path = typer.Option(..., help="Output .onnx file."),
    opset: int = typer.Option(
        18, help="ONNX opset: 18 (the lowest torch's exporter writes for this model) up to the installed onnx's newest."
    ),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the file against PyTorch (onnxruntime)."),
) -> None:
    """Export a trained model (text prior folded in) to ONNX: input images (aligned face crops, normalised), outputs
    probs and maps; the metadata holds the AU order, image size, normalisation and the run's per-AU thresholds."""
    from hiva_core.export import export_onnx

    report = export_onnx(run=run, onnx=onnx, opset=opset, verify=verify)
    diff = report["max_abs_diff"]
    typer.echo(
        f"wrote {onnx} (outputs {', '.join(report['outputs'])}; per-AU thresholds in its metadata, hiva.thresholds; "
        + (f"onnxruntime matches PyTorch to {diff:.1e})" if diff is not None else "not checked)"),
        err=True,
    )


def _all_folds(fold: int | None, folds: str | None) -> bool:
    """Whether --folds all was given: 'all' is its only value, and it does not go with --fold K."""
    if folds is not None and folds != "all":
        raise UserError(f"--folds takes 'all' (got {folds!r}); use --fold K for one fold")
    if folds == "all" and fold is not None:
        raise UserError("give either --fold K or --folds all, not both")
    return folds == "all"


def main(argv: Sequence[str] | None = None) -> int:
    return run_app(app, argv)


if __name__ == "__main__":
    raise SystemExit(main())
