"""``gpuseg batch MANIFEST TASK [task options] -o OUTDIR``: one task over many cases on Dask.

Task options are ``--name value`` (``--min 200 --max 3000``; booleans ``--per-segment`` or
``--per-segment false``); ``gpuseg batch --help`` lists them with the tasks that take each.
"""

from __future__ import annotations

import argparse
import sys

from . import add_backend_arg


def register(sub) -> None:
    from ..batch.tasks import TASKS

    p = sub.add_parser(
        "batch", help="run a task (convert, stats, surface, edit, threshold, grow, compare) over many cases on Dask",
        description="Run one task over the cases of a manifest on a local Dask cluster (default) or on any "
                    "Dask cluster (--scheduler). Outputs: OUTDIR/cases/<id>/, OUTDIR/results.csv (+ .parquet "
                    "with pyarrow) and OUTDIR/summary.json. Exit status 1 when a case failed.")
    p.add_argument("manifest", help="cases: a .csv/.json file (columns id, image, segmentation, reference, and "
                                    "per-case options), or a glob pattern with {id}, e.g. 'ts/{id}/seg.nii.gz'")
    p.add_argument("task", choices=TASKS, help="what each case does")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="local cluster: worker processes (default: one per core)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:8786)")
    p.add_argument("--retries", type=int, default=2, help="resubmit a case whose worker died, up to K times (default 2)")
    p.add_argument("--resume", action="store_true",
                   help="skip cases whose outputs exist with the same hash of inputs and options")
    p.add_argument("--glob-column", default=None, choices=["image", "segmentation", "reference"],
                   help="glob manifest: the column the matched files fill (default: image for threshold and "
                        "edit, else segmentation)")
    for col in ("image", "segmentation", "reference"):
        p.add_argument(f"--{col}-template", default=None, metavar="TEMPLATE",
                       help=f"glob manifest: the {col} column from the pattern's fields, e.g. 'ct/{{id}}.nii.gz'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backend_arg(p)
    _add_task_options(p)
    p.set_defaults(func=cmd_batch)


def _add_task_options(p: argparse.ArgumentParser) -> None:
    """Every task's options as ``--name``; which tasks take each is in its help."""
    from ..batch.tasks import OPTIONS, parse_bool

    g = p.add_argument_group("task options (per-case manifest columns of the same name override them)")
    seen: dict[str, list[str]] = {}
    for task, spec in OPTIONS.items():
        for k in spec:
            seen.setdefault(k, []).append(task)
    for k, tasks in seen.items():
        opt = OPTIONS[tasks[0]][k]
        flag = "--segment" if k == "segments" else "--" + k.replace("_", "-")
        text = ("output file type: segmentations .seg.nrrd (default), .nii.gz, .nii, .nrrd, .h5; surface: "
                ".vtp (default), .stl, .obj, .ply, .glb, .gltf") if k == "format" else opt.help
        kw = {"dest": f"opt_{k}", "default": None, "help": f"[{', '.join(tasks)}] {text}", "metavar": k.upper()}
        if k == "segments":
            kw["action"] = "append"
        elif opt.type is parse_bool:
            kw.update(nargs="?", const="true", metavar="BOOL")
        g.add_argument(flag, **kw)


def task_options(args: argparse.Namespace) -> dict:
    """The task options given on the command line; one the task does not take is an error."""
    from ..batch.tasks import OPTIONS
    from ..errors import InvalidInputError

    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    wrong = [k for k in given if k not in OPTIONS[args.task]]
    if wrong:
        raise InvalidInputError(f"task {args.task} does not take "
                                + ", ".join("--" + ("segment" if k == "segments" else k.replace("_", "-"))
                                            for k in wrong))
    if "segments" in given:
        given["segments"] = list(given["segments"])
    return given


def cmd_batch(args: argparse.Namespace) -> int:
    from ..batch import read_manifest, run

    opts = task_options(args)
    column = args.glob_column or ("image" if args.task in ("threshold", "edit") else "segmentation")
    templates = {c: getattr(args, f"{c}_template") for c in ("image", "segmentation", "reference")
                 if getattr(args, f"{c}_template")}
    cases = read_manifest(args.manifest, column=column, templates=templates or None)
    res = run(cases, args.task, outdir=args.output, options=opts, scheduler=args.scheduler, workers=args.workers,
              backend=args.backend, retries=args.retries, resume=args.resume, progress=not args.no_progress)
    for r in res.cases:
        if r["status"] == "failed":
            print(f"failed: {r['case']}: {r['error_type']}: {r['error']}", file=sys.stderr)
    c = res.counts
    print(f"{c['done']} done, {c['failed']} failed, {c['skipped']} skipped; {res.files['csv']}, "
          f"{res.files['summary']}")
    return res.exit_code
