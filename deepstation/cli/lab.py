"""deepstation lab: JupyterLab on this machine with the deepstation kernel and a notebook per seed task."""
from __future__ import annotations

from deepstation.cli import verb_parser


def add_parser(sub, common):
    p = verb_parser(sub, common, "lab",
                    "Start JupyterLab on 127.0.0.1 with a fresh token and the \"Python (deepstation)\" kernel, in a "
                    "notebooks folder holding one ready notebook per seed task (captions, forecasting, "
                    "transcription), a tour and an R notebook. Prints the URL; Ctrl-C stops it.",
                    "deepstation lab --port 8888 --no-browser   # then, from a laptop: "
                    "ssh -L 8888:127.0.0.1:8888 HOST")
    p.add_argument("--port", type=int, metavar="N", help="the port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", dest="browser", action="store_false", help="do not open a web browser")
    p.add_argument("--dir", metavar="DIR",
                   help="the folder to open; the seed notebooks it lacks are copied in (default: ./notebooks)")
    p.set_defaults(run=run)


def run(args) -> int:
    from deepstation.workstation.lab import serve

    return serve(port=args.port, folder=args.dir, open_browser=args.browser, announce=_say)


def _say(line: str) -> None:
    print(line, flush=True)  # at once: a script or test reads the URL while the lab runs
