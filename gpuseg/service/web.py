"""The reference web page at ``/`` (web/, built with Vite into web/dist) and the ``--demo``
session on the phantom (web/README.md)."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

from fastapi.responses import HTMLResponse

from .config import ServiceConfig

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>gpuseg serve</title>
<h1>gpuseg serve</h1>
<p>The web page is not built. Build it once (needs Node.js and npm), then reload:</p>
<pre>cd {web} &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>It is looked for in <code>{dist}</code>. The API works without it: <a href="/docs">/docs</a>,
<a href="/api/sessions">/api/sessions</a>.</p>
"""


def mount_web(app, config: ServiceConfig) -> None:
    """Serve web/dist at ``/`` (after every API route); a page saying how to build it when absent."""
    from fastapi.staticfiles import StaticFiles

    dist = config.web_dir
    if (dist / "index.html").is_file():
        app.mount("/", StaticFiles(directory=dist, html=True), name="web")
        return

    @app.get("/", include_in_schema=False)
    async def not_built() -> HTMLResponse:
        return HTMLResponse(NOT_BUILT.format(web=html.escape(str(dist.parent)), dist=html.escape(str(dist))))


def create_demo_session(store, shape: tuple[int, int, int]):
    """A session on the demo phantom (gpuseg.phantom) with an empty segmentation, its image kept
    in the session's own folder like an upload."""
    from ..io import write_labelmap
    from ..phantom import make_phantom

    ph = make_phantom(shape)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "phantom.nii.gz"
        write_labelmap(p, ph.image, ph.geometry)
        data = p.read_bytes()
    return store.create({"image": None, "uploaded": True, "demo": list(shape)}, {"image": (".nii.gz", data)})
