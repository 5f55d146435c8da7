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
    config = ServiceConfig(args.data_root, host=args.host, port=args.port,
                           token=args.token or os.environ.get("GPUSEG_TOKEN") or None,
                           backend=args.backend, allow_origins=[o.rstrip("/") for o in args.allow_origin],
                           max_message_bytes=args.max_message, max_points=args.max_points,
                           max_sessions=args.max_sessions, max_session_bytes=parse_bytes(args.session_memory))
    app = create_app(config)
    print(f"gpuseg serve: http://{args.host}:{args.port} (data root {config.data_root}; OpenAPI at /openapi.json)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                ws_max_size=4 * args.max_message + 65536, lifespan="on")
    return 0
