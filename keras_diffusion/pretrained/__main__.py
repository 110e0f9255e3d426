"""List, verify or add the pretrained models that ship with the package.

    python -m keras_diffusion.pretrained list
"""

import json
import sys

from keras_diffusion import cli
from keras_diffusion import pretrained

EXAMPLES = [
    "python -m keras_diffusion.pretrained list            # name, parameters, training, quality, size",
    "python -m keras_diffusion.pretrained list --json",
    "python -m keras_diffusion.pretrained verify          # check every file against its sha256",
    "python -m keras_diffusion.sample --pretrained unet-fashion-mnist-conditional --label all --out grid.png",
    "python -m keras_diffusion.pretrained pack runs/cond unet-fashion-mnist-conditional --quality q.json  # maintainers",
]


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.pretrained", __doc__.strip().splitlines()[0], EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=cli.Subcommand)
    listing = commands.add_parser("list", help="print every pretrained model")
    listing.add_argument("--json", action="store_true", help="print the manifest entries as JSON")
    commands.add_parser("verify", help="check every shipped file against the manifest's sha256")
    pack = commands.add_parser("pack", help="copy a finished run into the package (maintainers)")
    pack.add_argument("run", help="a finished run directory")
    pack.add_argument("name", help="the name learners will type")
    pack.add_argument("--quality", help="JSON file with the measured quality (evaluate's output)")
    pack.add_argument("--note", default="", help="one line on how it was trained (chunks, hardware)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "verify":
        for name in pretrained.names():
            pretrained.path(name)
            print(f"{name}: ok")
        return 0
    if args.command == "pack":
        from keras_diffusion.pretrained.pack import pack

        print(f"packed {pack(args.run, args.name, args.quality, args.note)}")
        return 0
    models = pretrained.manifest()
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    print(f"{'name':34} {'parameters':>10} {'epochs':>6} {'hours':>6} {'FID':>7} {'floor':>6} {'entropy':>7} {'MB':>5}  hardware")
    for name, entry in models.items():
        quality = entry.get("quality", {})
        cells = [f"{entry['parameters']:,}", entry["epochs"], f"{entry['hours']:.2f}", quality.get("fid", "-"),
                 quality.get("floor", "-"), quality.get("class_entropy", "-"), f"{entry['megabytes']:.1f}"]
        print(f"{name:34} {cells[0]:>10} {cells[1]:>6} {cells[2]:>6} {cells[3]!s:>7} {cells[4]!s:>6} {cells[5]!s:>7} {cells[6]:>5}  {entry['hardware']}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
