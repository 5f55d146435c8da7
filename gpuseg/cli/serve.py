"""``gpuseg serve``: the brush-preview and editing service (docs/protocol.md)."""

from __future__ import annotations

import argparse
import os

from . import add_backend_arg


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the brush-preview service: sessions over HTTP, edits and sparse "
                                     "packed patches over a WebSocket (docs/protocol.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback); "
                                                       "any other needs --token")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--data-root", default=".", help="folder that holds every file the service may read or "
                                                    "write, and its sessions (default: the current folder)")
    p.add_argument("--token", default=None, help="bearer token required on every HTTP request and WebSocket "
                                                 "(default: $GPUSEG_TOKEN); required off loopback")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser Origin (scheme://host:port) allowed to open WebSockets; loopback origins "
                        "are allowed on a loopback server (repeatable)")
    p.add_argument("--max-message", type=int, default=1 << 20, metavar="BYTES",
                   help="largest client message (default 1 MiB)")
    p.add_argument("--max-points", type=int, default=10_000, help="most points per stroke (default 10000)")
    p.add_argument("--max-sessions", type=int, default=16, help="most sessions held at once (default 16)")
    p.add_argument("--session-memory", default="8GB",
                   help="device budget per session: image + segments (whole grid each, worst case) + undo "
                        "(default 8GB)")
    p.add_argument("--demo", action="store_true",
                   help="start with a session on the demo phantom (gpuseg.phantom); open the printed URL")
    p.add_argument("--demo-shape", default="100x256x256", metavar="KxJxI",
                   help="the demo phantom's grid, slices x rows x columns (default 100x256x256)")
    p.add_argument("--web-dist", default=None, metavar="DIR",
                   help="the built web page served at / (default: web/dist of this source tree; "
                        "build it with: cd web && npm ci && npm run build)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default warning)")
    add_backend_arg(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..backends.base import parse_bytes
    from ..errors import InvalidInputError

    try:
        import uvicorn

        from ..service import ServiceConfig, create_app
    except ImportError as exc:
        raise InvalidInputError(f"gpuseg serve needs the server extra (pip install 'gpuseg[server]'): {exc}") from exc
    if not 0 < args.port < 65536:
        raise InvalidInputError(f"--port must be 1..65535, got {args.port}")
    for name in ("max_message", "max_points", "max_sessions"):
        if getattr(args, name) < 1:
            raise InvalidInputError(f"--{name.replace('_', '-')} must be positive")
    demo_shape = None
    if args.demo:
        try:
            demo_shape = tuple(int(v) for v in args.demo_shape.lower().split("x"))
        except ValueError:
            demo_shape = ()
        if len(demo_shape) != 3 or min(demo_shape) < 1 or demo_shape[0] * demo_shape[1] * demo_shape[2] > 200_000_000:
            raise InvalidInputError(f"--demo-shape must be KxJxI of positive sizes (at most 2e8 voxels), "
                                    f"got {args.demo_shape!r}")
    config = ServiceConfig(args.data_root, host=args.host, port=args.port,
                           token=args.token or os.environ.get("GPUSEG_TOKEN") or None,
                           backend=args.backend, allow_origins=[o.rstrip("/") for o in args.allow_origin],
                           max_message_bytes=args.max_message, max_points=args.max_points,
                           max_sessions=args.max_sessions, max_session_bytes=parse_bytes(args.session_memory),
                           web_dist=args.web_dist, demo_shape=demo_shape)
    app = create_app(config)
    print(f"gpuseg serve: http://{args.host}:{args.port} (data root {config.data_root}; OpenAPI at /openapi.json)"
          + ("" if (config.web_dir / "index.html").is_file() else
             f"; the web page is not built: cd {config.web_dir.parent} && npm ci && npm run build"),
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                ws_max_size=4 * args.max_message + 65536, lifespan="on")
    return 0
