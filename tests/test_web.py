"""The reference web page (web/) in a real browser: Debian's chromium driven headless by
Playwright against a real ``gpuseg serve --demo`` on a free loopback port.

A stroke painted with mouse events on the axial view must leave exactly the voxels the brush
covers in the server's segment (computed here from the stroke's world points, independently of
gpuseg) and change the canvas pixels under it; undo must revert both. A second tab sees the
first one's strokes; a grow-from-seeds preview appears; a rejected message shows the server's
error text; a dropped connection shows a banner and resyncs.

Skips when chromium, Playwright or the built page (``cd web && npm ci && npm run build``) is
missing, unless ``GPUSEG_REQUIRE_WEB=1`` (CI), where that fails instead.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "web" / "dist"
CHROMIUM = os.environ.get("GPUSEG_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("GPUSEG_REQUIRE_WEB") == "1"
SHAPE = (40, 128, 128)  # the demo phantom, small: the tests check behaviour, not speed
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    for mod in ("fastapi", "uvicorn", "PIL"):
        try:
            __import__(mod)
        except ImportError:
            return f"Python package {mod} is not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright; no browser download)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    if not (DIST / "index.html").is_file():
        return f"the web page is not built ({DIST}/index.html): cd web && npm ci && npm run build"
    return None


def _need_web() -> None:
    why = _missing()
    if why:
        if REQUIRE:
            pytest.fail(f"GPUSEG_REQUIRE_WEB=1 but {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``gpuseg serve --demo`` as a subprocess; ``url`` is the page URL it prints."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.port = _free_port()
        self.log = root / "server.log"
        env = dict(os.environ, PYTHONPATH=str(REPO), NUMBA_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "gpuseg", "serve", "--port", str(self.port), "--data-root", str(root),
               "--backend", os.environ.get("GPUSEG_TEST_SERVICE_BACKEND", "cpu"), *args]
        with open(root / "server.out", "wb") as out, open(self.log, "wb") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = None
        end = time.monotonic() + 180
        while self.url is None:
            text = (root / "server.out").read_text()
            m = re.search(r"demo session \w+: open (http://\S+)", text)
            if m:
                self.url = m.group(1)
            elif "--demo" not in args and "gpuseg serve: http" in text:
                self.url = self.base + "/"
            elif self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"server did not start: {text}\n{self.log.read_text()[-2000:]}")
            else:
                time.sleep(0.2)
        self._wait_health(end)

    def _wait_health(self, end: float) -> None:
        import httpx

        while True:
            try:
                httpx.get(self.base + "/api/health", timeout=5).raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture(scope="module")
def server():
    _need_web()
    root = Path(tempfile.mkdtemp(prefix="gpuseg-web-"))
    s = Server(root, "--demo", "--demo-shape", "x".join(map(str, SHAPE)))
    yield s
    s.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context():
    _need_web()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="gpuseg-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1280, "height": 800})
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(ctx, url: str):
    page = ctx.new_page()
    page.on("pageerror", lambda e: print("page error:", e))
    page.goto(url)
    page.wait_for_function("window.gpuseg && window.gpuseg.ready", timeout=120_000)
    return page


def settle(page, timeout: float = 120_000) -> None:
    """Every message of this page answered."""
    page.wait_for_function("window.gpuseg.pending === 0 && window.gpuseg.ready", timeout=timeout)


def pixels(page, rect: dict) -> np.ndarray:
    from PIL import Image

    png = page.screenshot(clip=rect)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def stroke_path(rect: dict, fx0: float, fy0: float, fx1: float, fy1: float, n: int = 12) -> list[tuple[float, float]]:
    return [(rect["x"] + rect["width"] * (fx0 + (fx1 - fx0) * t / n),
             rect["y"] + rect["height"] * (fy0 + (fy1 - fy0) * t / n)) for t in range(n + 1)]


def paint(page, path) -> dict:
    page.mouse.move(*path[0])
    page.mouse.down()
    for p in path[1:]:
        page.mouse.move(*p)
    page.mouse.up()
    settle(page)
    return page.evaluate("window.gpuseg.lastStroke")


def server_masks(server: Server, sid: str) -> dict[str, np.ndarray]:
    """The server's committed segments (an export read back), id -> bool (k, j, i)."""
    import httpx

    import gpuseg

    r = httpx.get(f"{server.base}/api/sessions/{sid}/export", params={"format": "seg.nrrd"}, timeout=120)
    r.raise_for_status()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.seg.nrrd"
        p.write_bytes(r.content)
        seg = gpuseg.read_segmentation(p, backend="cpu")
        return {s.id: s.mask.to_numpy().astype(bool) for s in seg}


def session_info(server: Server, sid: str) -> dict:
    import httpx

    return httpx.get(f"{server.base}/api/sessions/{sid}", timeout=30).json()


def select(page, n: int) -> str:
    page.click(f"#segments li:nth-child({n})")
    return page.evaluate(f"window.gpuseg.segments[{n - 1}].id")


def brush_voxels(info: dict, stroke: dict) -> tuple[np.ndarray, np.ndarray]:
    """(certainly inside, possibly inside) bool (k, j, i) grids of a sphere brush through the
    stroke's RAS points: a voxel is inside when its centre (ijk_to_lps) is within d/2 mm of a
    stamp; stamps at most d/4 apart along each segment (docs/editor.md). The two differ only
    for centres within 1e-6 mm of the sphere's surface."""
    from scipy.spatial import cKDTree

    assert stroke["space"] == "ras" and stroke["shape"] == "sphere"
    pts = np.asarray(stroke["points"], np.float64) * np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
    r = float(stroke["diameter_mm"]) / 2.0
    stamps = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(math.ceil(np.linalg.norm(b - a) / (r / 2.0)))
        if n:
            stamps.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    stamps = np.concatenate(stamps)
    nk, nj, ni = info["shape"]
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ijk1 = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)], axis=1)
    world = ijk1 @ np.asarray(info["ijk_to_lps"], np.float64).T
    dist, _ = cKDTree(stamps).query(world[:, :3])
    dist = dist.reshape(nk, nj, ni)
    return dist <= r - 1e-6, dist <= r + 1e-6


def changed_at(before: np.ndarray, after: np.ndarray, rect: dict, path) -> list[bool]:
    """Whether the colour changed at each point of a mouse path (a 3x3 neighbourhood)."""
    out = []
    for x, y in path:
        cx, cy = int(round(x - rect["x"])), int(round(y - rect["y"]))
        a = before[cy - 1:cy + 2, cx - 1:cx + 2]
        b = after[cy - 1:cy + 2, cx - 1:cx + 2]
        out.append(bool(np.abs(a - b).max() > 24))
    return out


def test_page_is_served_or_says_how_to_build(tmp_path):
    """Without a built page, / says how to build it (no browser needed)."""
    import httpx

    pytest.importorskip("fastapi")
    empty = tmp_path / "dist"
    empty.mkdir()
    s = Server(tmp_path, "--web-dist", str(empty))
    try:
        r = httpx.get(s.base + "/", timeout=30)
        assert r.status_code == 200
        assert "npm ci" in r.text and "npm run build" in r.text
        assert httpx.get(s.base + "/api/health", timeout=30).json()["status"] == "ok"
    finally:
        s.stop()


@pytest.mark.parametrize("shape", ["1x2", "0x10x10", "axbxc", "10000x10000x10000"])
def test_bad_demo_shape_is_one_line_exit_2(shape, tmp_path):
    r = subprocess.run([sys.executable, "-m", "gpuseg", "serve", "--demo", "--demo-shape", shape, "--data-root",
                        str(tmp_path), "--port", str(_free_port())], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--demo-shape" in lines[0] and shape in lines[0]


def test_paint_undo_second_tab_grow(server, browser_context, tmp_path):
    page = open_page(browser_context, server.url)
    sid = page.evaluate("window.gpuseg.session")
    info = session_info(server, sid)
    assert info["shape"] == list(SHAPE)

    page.fill("#diameter", "15")
    page.click("#add-segment")
    page.wait_for_function("window.gpuseg.segments.length === 1")
    settle(page)
    seg_a = page.evaluate("window.gpuseg.segments[0].id")
    rect = page.evaluate("window.gpuseg.tileRect(0)")  # the axial view
    assert rect and rect["width"] > 100
    page.mouse.move(rect["x"] + 2, rect["y"] + 2)  # park the pointer off the stroke
    before = pixels(page, rect)

    # a stroke in the body, off the crosshair lines (through the tile's centre)
    path = stroke_path(rect, 0.28, 0.33, 0.42, 0.40)
    stroke = paint(page, path)
    assert page.evaluate("window.gpuseg.errors") == []
    sure, maybe = brush_voxels(info, stroke)
    got = server_masks(server, sid)[seg_a]
    assert sure.sum() > 50, "the stroke should cover voxels"
    assert not (sure & ~got).any(), f"{int((sure & ~got).sum())} voxels of the brush are missing on the server"
    assert not (got & ~maybe).any(), f"{int((got & ~maybe).sum())} voxels outside the brush are set on the server"
    assert page.evaluate(f"window.gpuseg.voxelCount({seg_a!r})") == int(got.sum())
    after = pixels(page, rect)
    changed = changed_at(before, after, rect, path)
    assert all(changed), f"canvas colour unchanged under the stroke at {changed.count(False)} of {len(path)} points"
    lat = page.evaluate("window.gpuseg.latencies")
    assert len(lat) == 1 and lat[0] > 0
    assert "stroke→patch" in page.inner_text("#latency") and "ms" in page.inner_text("#latency")

    # undo: the server's segment and the pixels revert
    page.click("#undo")
    settle(page)
    assert not server_masks(server, sid)[seg_a].any()
    assert page.evaluate(f"window.gpuseg.voxelCount({seg_a!r})") == 0
    reverted = pixels(page, rect)
    assert not any(changed_at(before, reverted, rect, path)), "pixels did not revert after undo"
    page.click("#redo")
    settle(page)
    assert np.array_equal(server_masks(server, sid)[seg_a], got)

    # a second tab on the same session sees the first one's strokes
    page_b = open_page(browser_context, server.url)
    rect_b = page_b.evaluate("window.gpuseg.tileRect(0)")
    page_b.mouse.move(rect_b["x"] + 2, rect_b["y"] + 2)
    assert page_b.evaluate(f"window.gpuseg.voxelCount({seg_a!r})") == int(got.sum())  # from its snapshot
    b_before = pixels(page_b, rect_b)
    path2 = stroke_path(rect, 0.30, 0.62, 0.42, 0.68)
    stroke2 = paint(page, path2)
    v = page.evaluate("window.gpuseg.version")
    page_b.wait_for_function(f"window.gpuseg.version === {v}", timeout=60_000)
    got2 = server_masks(server, sid)[seg_a]
    sure2, maybe2 = brush_voxels(info, stroke2)
    assert not (sure2 & ~got2).any() and not (got2 & ~(maybe | maybe2)).any()
    assert page_b.evaluate(f"window.gpuseg.voxelCount({seg_a!r})") == int(got2.sum())
    b_after = pixels(page_b, rect_b)
    path2_b = [(x - rect["x"] + rect_b["x"], y - rect["y"] + rect_b["y"]) for x, y in path2]
    assert all(changed_at(b_before, b_after, rect_b, path2_b)), "the second tab does not show the stroke"

    # grow from seeds: a second segment's seed outside the first, then a preview that appears
    page.click("#add-segment")
    page.wait_for_function("window.gpuseg.segments.length === 2")
    settle(page)
    page.click("#segments li:nth-child(2)")
    paint(page, stroke_path(rect, 0.62, 0.30, 0.70, 0.36, 6))
    painted = int(sum(m.sum() for m in server_masks(server, sid).values()))
    seeds_only = pixels(page, rect)
    page.click("#grow-preview")
    settle(page)
    page.wait_for_function("window.gpuseg.previewVoxels > 0", timeout=60_000)
    shown = page.evaluate("window.gpuseg.previewVoxels")
    assert shown > painted, f"the grow preview shows {shown} voxels, fewer than the {painted} seeds"
    grown = pixels(page, rect)
    newly = (np.abs(grown - seeds_only).max(axis=2) > 24).sum()
    assert newly > 1000, f"the grow preview changed only {newly} pixels of the axial view"
    page.screenshot(path=str(tmp_path / "web-frontend.png"))
    if os.environ.get("GPUSEG_WEB_SCREENSHOT"):
        page.screenshot(path=os.environ["GPUSEG_WEB_SCREENSHOT"])
    page.click("#grow-cancel")
    settle(page)
    page.wait_for_function("window.gpuseg.previewVoxels === 0")
    left = (np.abs(pixels(page, rect) - seeds_only).max(axis=2) > 24).sum()
    assert left == 0, f"{left} pixels still differ after the preview was cancelled"
    page_b.close()
    page.close()


def test_rejected_message_and_lost_connection(server, browser_context):
    page = open_page(browser_context, server.url)
    sid = page.evaluate("window.gpuseg.session")
    if not page.evaluate("window.gpuseg.segments.length"):
        page.click("#add-segment")
        page.wait_for_function("window.gpuseg.segments.length >= 1")
        settle(page)
    # a smoothing kernel of 0 mm is refused by the server; its message is shown
    page.fill("#smooth-mm", "0")
    page.click("#segments li:nth-child(1)")
    page.click("#smooth")
    settle(page)
    errors = page.evaluate("window.gpuseg.errors")
    assert errors and errors[-1]["code"] == "invalid"
    assert errors[-1]["message"] in page.inner_text("#message")

    seg = page.evaluate("window.gpuseg.segments[0].id")
    count = page.evaluate(f"window.gpuseg.voxelCount({seg!r})")
    want = int(server_masks(server, sid)[seg].sum())
    assert count == want
    page.evaluate("window.gpuseg.dropConnection()")
    page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
    assert "connection lost" in page.inner_text("#banner")
    page.wait_for_function("window.gpuseg.ready", timeout=60_000)
    page.wait_for_selector("#banner", state="hidden", timeout=10_000)
    assert page.evaluate(f"window.gpuseg.voxelCount({seg!r})") == want
    page.close()


def test_threshold_erase_masking_grow_save(server, browser_context):
    from gpuseg.phantom import make_phantom

    page = open_page(browser_context, server.url)
    sid = page.evaluate("window.gpuseg.session")
    info = session_info(server, sid)
    image = make_phantom(SHAPE).image  # the demo's image, made again (same seed)
    rect = page.evaluate("window.gpuseg.tileRect(0)")
    page.fill("#diameter", "15")
    n0 = page.evaluate("window.gpuseg.segments.length")
    page.click("#add-segment")
    page.wait_for_function(f"window.gpuseg.segments.length === {n0 + 1}")
    settle(page)
    seg = select(page, n0 + 1)

    # threshold: the live preview is the image's range; Apply makes the segment exactly that
    page.fill("#th-min", "400")
    page.fill("#th-max", "3000")
    page.check("#th-preview")
    want = (image >= 400) & (image <= 3000)
    page.wait_for_function("window.gpuseg.previewVoxels > 0")
    assert page.evaluate("window.gpuseg.previewVoxels") == int(want.sum())
    page.click("#th-apply")
    settle(page)
    assert page.evaluate("window.gpuseg.previewVoxels") == 0
    got = server_masks(server, sid)[seg]
    assert np.array_equal(got, want), f"threshold differs in {int((got != want).sum())} voxels"

    # erase across the spine: the brush's voxels go, the rest stays
    page.check("input[name=tool][value=erase]")
    stroke = paint(page, stroke_path(rect, 0.40, 0.72, 0.60, 0.72))
    assert stroke["erase"] is True
    sure, maybe = brush_voxels(info, stroke)
    after = server_masks(server, sid)[seg]
    assert (got & sure).any(), "the erase stroke should cross the thresholded bone"
    assert not (after & sure).any() and np.array_equal(after & ~maybe, got & ~maybe)
    assert page.evaluate(f"window.gpuseg.voxelCount({seg!r})") == int(after.sum())

    # masking: an intensity range limits a paint stroke (inclusive, as Slicer's)
    page.check("input[name=tool][value=paint]")
    page.check("#use-range")
    page.fill("#range-min", "-300")
    page.fill("#range-max", "20")
    page.click("#masking")
    settle(page)
    page.click("#add-segment")
    page.wait_for_function(f"window.gpuseg.segments.length === {n0 + 2}")
    settle(page)
    seg2 = select(page, n0 + 2)
    stroke = paint(page, stroke_path(rect, 0.08, 0.45, 0.30, 0.50))
    sure, maybe = brush_voxels(info, stroke)
    inside = (image >= -300) & (image <= 20)
    got = server_masks(server, sid)[seg2]
    assert got.any() and (sure & ~inside).any(), "the stroke should cross voxels outside the range"
    assert not (sure & inside & ~got).any() and not (got & ~(maybe & inside)).any()
    page.uncheck("#use-range")
    page.click("#masking")
    settle(page)

    # grow from seeds, applied: the segments grow beyond their seeds on the server
    before = {k: int(v.sum()) for k, v in server_masks(server, sid).items()}
    page.click("#grow-preview")
    settle(page)
    page.click("#grow-apply")
    settle(page)
    grown = {k: int(v.sum()) for k, v in server_masks(server, sid).items()}
    assert sum(grown.values()) > sum(before.values())
    assert page.evaluate("window.gpuseg.errors") == []

    # save under the data root
    page.fill("#save-path", "web-test.seg.nrrd")
    page.click("#save")
    page.wait_for_function("document.getElementById('message').textContent.startsWith('saved version')")
    assert (server.root / "web-test.seg.nrrd").stat().st_size > 0
    page.close()
