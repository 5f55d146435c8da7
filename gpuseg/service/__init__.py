"""The brush-preview service (``gpuseg serve``): sessions over HTTP, editing over a WebSocket
protocol of sparse packed patches (docs/protocol.md), a journal per session.

The server needs the ``server`` extra (FastAPI, uvicorn, msgpack, zstandard); importing this
package does not import them: :func:`create_app` does.
"""

from __future__ import annotations

__all__ = ["create_app", "ServiceConfig"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServiceConfig":
        from .config import ServiceConfig

        return ServiceConfig
    raise AttributeError(name)
