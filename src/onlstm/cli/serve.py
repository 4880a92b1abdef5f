"""``onlstm serve``: the local web viewer (argument parsing and starting the server only)."""

from __future__ import annotations

import errno
import socket
import sys

from ..errors import UserError
from . import argtypes
from .common import _names_text, resolve_model

LOOPBACK = ("127.0.0.1", "localhost")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="a local web page: parse sentences and see their trees and distances, browse a treebank's errors",
        description=("Start a local web viewer (http://127.0.0.1:8000/ by default). Parse sentences and see each "
                     "tree drawn over the words with the distances of every layer under them (docs/spec.md §2), "
                     "or pick a treebank, see its parse-eval table (docs/spec.md §3) and every sentence's F1, and "
                     "open a sentence to compare the gold and the predicted tree, their matching, missing and "
                     "extra constituents marked. The page uses a JSON API under /api/ that scripts can use too "
                     "(README: 'See the trees'). Needs FastAPI and uvicorn: pip install 'onlstm[serve]'."))
    p.add_argument("--model", action="append", metavar="NAME|DIR",
                   help="a model to offer: a bundled model's name (" + _names_text() + ") or a model folder "
                        "(repeatable; default: every bundled model)")
    p.add_argument("--treebank", action="append", metavar="FILE", default=[],
                   help="a treebank file to offer beside the bundled WSJ and Sinica samples: bracketed .mrg "
                        "(also a folder or glob) or Sinica ICG (repeatable; read at start; the server reads no "
                        "other file)")
    p.add_argument("--max-length", type=argtypes.positive_int, metavar="N",
                   help="treebank sentences of at most N words only (10 for WSJ10)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else lets other "
                        "machines parse with your CPU)")
    p.add_argument("--port", type=argtypes.positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=64, help="sentences per padded batch")
    p.set_defaults(func=run)


def _models(args) -> dict | None:
    """--model arguments -> name -> folder (None: the bundled ones); names made unique."""
    if not args.model:
        return None
    out: dict = {}
    for arg in args.model:
        folder = resolve_model(arg)  # UserError for an unknown name or folder
        name, k = folder.name or "model", 2
        while name in out and out[name] != folder:
            name, k = f"{folder.name}-{k}", k + 1
        out[name] = folder
    return out


def _check_port(host: str, port: int) -> None:
    """A UserError unless ``host:port`` can be listened on now."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UserError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is in use; choose another with --port") from None
            raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def run(args) -> int:
    try:
        import uvicorn

        from ..tasks.serve.app import create_app
    except ImportError as err:
        raise UserError(f"onlstm serve needs FastAPI and uvicorn ({err.name} is missing): "
                        "pip install 'onlstm[serve]'") from None
    _check_port(args.host, args.port)
    allowed = list(LOOPBACK) if args.host in LOOPBACK else None  # Host headers taken (DNS rebinding)
    app = create_app(_models(args), treebank_files=args.treebank, max_length=args.max_length,
                     batch_size=args.batch_size, allowed_hosts=allowed)
    viewer = app.state.viewer
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"onlstm serve: http://{shown}:{args.port}/  (models: {', '.join(viewer.models)}; treebanks: "
          f"{', '.join(viewer.treebanks)}; Ctrl-C stops)", file=sys.stderr)
    if args.host not in LOOPBACK:
        print(f"warning: listening on {args.host}: other machines can reach this server", file=sys.stderr)
    sys.stderr.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
