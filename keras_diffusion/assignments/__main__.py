"""Hand out diffusion homework and grade it: list the assignments, release student notebooks, grade submissions.

    python -m keras_diffusion.assignments release --out handout
    python -m keras_diffusion.assignments grade forward submissions/ --csv grades.csv
"""

import argparse
import json
import pathlib
import sys

from keras_diffusion import cli
from keras_diffusion.assignments.sandbox import LAYERS, TIMEOUT

EXAMPLES = [
    "python -m keras_diffusion.assignments list",
    "python -m keras_diffusion.assignments release --out handout --ids forward,loss",
    "python -m keras_diffusion.assignments grade forward alice.ipynb",
    "python -m keras_diffusion.assignments grade forward submissions/ --csv grades.csv",
    "python -m keras_diffusion.assignments grade sampling bob.py --json --timeout 30",
    "python -m keras_diffusion.assignments grade forward submissions/ --seed 1234   # regrade a run",
    "python -m keras_diffusion.assignments grade forward submissions/ --require-sandbox",
]


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.assignments", __doc__.strip().splitlines()[0], EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=cli.Subcommand, metavar="{list,release,grade}")

    listing = commands.add_parser("list", help="the assignments: IDs, titles, points")
    listing.add_argument("--json", action="store_true", help="print JSON")

    release = commands.add_parser("release", help="write the student notebooks (solutions removed)")
    release.add_argument("--out", required=True, help="folder for the <id>.ipynb notebooks (created if missing)")
    release.add_argument("--ids", help="comma-separated assignment IDs (default: all)")

    grade = commands.add_parser(
        "grade",
        help="grade a .py/.ipynb submission, or every one in a folder",
        epilog="exit code 0 whenever grading happened, whatever the score; 2 for an unknown ID or a missing file",
    )
    grade.add_argument("id", help="assignment ID (see list)")
    grade.add_argument("path", help="a .py or .ipynb file, or a folder of them (student = file name without suffix)")
    grade.add_argument("--json", action="store_true", help="print the result(s) as JSON")
    grade.add_argument("--csv", help="write one row per submission to this CSV file")
    grade.add_argument(
        "--timeout", type=float, default=TIMEOUT, help=f"seconds for everything one submission does: loading it, every check, every restart (default: {TIMEOUT:g})"
    )
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    grade.add_argument("--seed", type=int, help="the inputs' seed, to reproduce an earlier run (default: a fresh secret one, printed in the report)")
    grade.add_argument("--sandbox", choices=("auto", *LAYERS), default="auto", help="where the submission runs (default: auto, the strongest available)")
    grade.add_argument("--require-sandbox", action="store_true", help="refuse to grade where neither bubblewrap nor Landlock is available")
    grade.add_argument("--allow-reference", action="store_true", help="grade copies of the shipped reference solution instead of giving them 0")
    for sub in (listing, release, grade):
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")

    args = parser.parse_args(argv)
    if args.command == "grade":
        if not args.timeout > 0:
            grade.error(f"--timeout must be > 0 seconds, got {args.timeout:g}")
        if args.jobs < 1:
            grade.error(f"--jobs must be >= 1, got {args.jobs}")
        if args.csv and not pathlib.Path(args.csv).resolve().parent.is_dir():
            grade.error(f"--csv {args.csv}: folder {pathlib.Path(args.csv).parent} does not exist")
    return args


def main(argv=None):
    args = parse_args(argv)
    return {"list": _list, "release": _release, "grade": _grade}[args.command](args)


def _list(args):
    from keras_diffusion.assignments import registry

    assignments = registry.all_assignments()
    if args.json:
        rows = [
            {"id": a.id, "title": a.title, "points": a.points, "functions": list(a.functions), "checks": [{"name": n, "points": p} for n, p, _ in a.checks]}
            for a in assignments
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for a in assignments:
            print(f"{a.id:<11} {a.points:>2} points  {a.title}  ({', '.join(a.functions)})")
    return 0


def _release(args):
    from keras_diffusion.assignments.release import release

    ids = [i.strip() for i in args.ids.split(",") if i.strip()] if args.ids else None
    for path in release(args.out, ids):
        print(f"wrote {path}")
    return 0


def _grade(args):
    from keras_diffusion.assignments import registry, sandbox
    from keras_diffusion.assignments.grade import Options, grade, grade_folder, scan_folder
    from keras_diffusion.assignments.report import printable, to_json, write_csv

    assignment = registry.get(args.id)
    path = pathlib.Path(args.path)
    options = Options(args.timeout, args.seed, args.sandbox, args.require_sandbox, args.allow_reference).resolved()
    status = sys.stderr if args.json else sys.stdout
    if options.sandbox == "rlimits":
        print(f"warning: {sandbox.describe('rlimits')}", file=sys.stderr)
    if path.is_dir():
        scanned = scan_folder(path)
        results = grade_folder(args.id, path, jobs=args.jobs, options=options, scanned=scanned)
        for entry in scanned.skipped:
            print(f"skipped {entry}", file=status)
    else:
        results = [grade(args.id, path, options=options)]
    if args.json:
        print(to_json(results))
    elif args.csv and path.is_dir():
        for r in results:
            print(f"{printable(pathlib.Path(r.submission).name):<30} {r.score:>3}/{r.max}" + ("  (see the error column)" if r.error else ""))
        print(f"sandbox: {sandbox.describe(options.sandbox)}; inputs: seed {options.seed} (grade again with --seed {options.seed})")
    else:
        print("\n\n".join(r.report() for r in results))
    if args.csv:
        write_csv(results, args.csv, [name for name, _, _ in assignment.checks])
        print(f"wrote {args.csv} ({len(results)} submission{'s' if len(results) != 1 else ''})", file=status)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
