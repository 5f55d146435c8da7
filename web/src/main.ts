// The reference page of `gpuseg serve` (docs/protocol.md): NiiVue shows the image and a drawing
// composed from the server's packed segment words; strokes are painted locally at once, then
// replaced by the server's patches, each written into NiiVue's drawing for its box only.
import { Niivue, SHOW_RENDER, MULTIPLANAR_TYPE } from "@niivue/niivue";
import { encode, decode, words as unpackWords, bytes as unpackBytes, Header } from "./wire";
import { inv4, apply, RasMap, Mat4 } from "./grid";

type Segment = { id: string; name: string; color: number[]; visible: boolean; words: Uint32Array };
type Pending = { kind: string; t0: number; firstPatch?: number; box?: number[] };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const token = params.get("token");
const authHeaders: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};

const nv = new Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true, multiplanarShowRender: SHOW_RENDER.ALWAYS,
                        multiplanarLayout: MULTIPLANAR_TYPE.GRID,
                        isColorbar: false, logLevel: "error" } as any);
let sid = "";
let info: any = null;
let shape = [0, 0, 0];
let nw = 0;
let toLps: Mat4 = [];
let toIjk: Mat4 = [];
let map: RasMap | null = null;
let segs: Segment[] = [];
let selected = "";
let version = -1;
let syncing = true;
let ws: WebSocket | null = null;
let seq = 1;
let closedByUs = false;
let preview: Uint8Array | null = null; // grow preview: native voxel -> label index (segment order + 1)
let viewport = { lo: -1, hi: -1 };
const pending = new Map<number, Pending>();
const latencies: number[] = [];
const acks: number[] = [];
const errors: Header[] = [];
let lastStroke: any = null;

// ---------------------------------------------------------------------------------------- HTTP
async function api(path: string, init: RequestInit = {}): Promise<any> {
  const r = await fetch(path, { ...init, headers: { ...authHeaders, ...(init.headers || {}) } });
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(typeof body === "object" ? `${body.error}: ${body.message ?? JSON.stringify(body.detail)}` : body);
  return body;
}

function message(text: string, isError = true) {
  const m = $("message");
  m.textContent = text;
  m.style.color = isError ? "#f88" : "#8c8";
}

function banner(text: string | null) {
  const b = $("banner");
  b.hidden = text === null;
  b.textContent = text ?? "";
}

// ---------------------------------------------------------------------------------- composition
function label(i: number, j: number, k: number): number {
  const wi = (k * shape[1] + j) * nw + (i >> 5);
  const bit = 1 << (i & 31);
  let lab = 0;
  for (let s = 0; s < segs.length; s++) if (segs[s].visible && segs[s].words[wi] & bit) lab = s + 1;
  if (lab === 0 && preview) lab = preview[(k * shape[1] + j) * shape[2] + i];
  return lab;
}

/** Recompose the native voxel box [i0,i1) x [j0,j1) x [k0,k1) into the drawing and upload it. */
function recompose(i0: number, i1: number, j0: number, j1: number, k0: number, k1: number, draw = true) {
  const bmp = nv.drawBitmap;
  if (!bmp || !map) return;
  i0 = Math.max(0, i0); j0 = Math.max(0, j0); k0 = Math.max(0, k0);
  i1 = Math.min(shape[2], i1); j1 = Math.min(shape[1], j1); k1 = Math.min(shape[0], k1);
  if (i1 <= i0 || j1 <= j0 || k1 <= k0) return;
  const [li, lj, lk] = map.lut;
  for (let k = k0; k < k1; k++)
    for (let j = j0; j < j1; j++) {
      const base = lj[j] + lk[k];
      for (let i = i0; i < i1; i++) bmp[base + li[i]] = label(i, j, k);
    }
  upload(i0, i1, j0, j1, k0, k1);
  if (draw) redraw();
}

/** One NiiVue redraw per animation frame however many patches arrive in it (rendering, not
 *  patching, is what costs in a browser without a GPU); at once in a hidden tab, whose frames wait. */
let redrawQueued = false;
function redraw() {
  if (document.hidden) { nv.drawScene(); return; }
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => { redrawQueued = false; nv.drawScene(); });
}

function recomposeAll() {
  recompose(0, shape[2], 0, shape[1], 0, shape[0]);
}

/** Upload the drawing's RAS box of a native voxel box to NiiVue's drawing texture (texSubImage3D
 *  of the box only); the whole bitmap through refreshDrawing where NiiVue needs that. */
function upload(i0: number, i1: number, j0: number, j1: number, k0: number, k1: number) {
  const n = nv as any;
  const gl: WebGL2RenderingContext = n.gl;
  if (!map || !n.drawTexture || n.opts.is2DSliceShader || n.opts.smoothDrawing > 0) {
    nv.refreshDrawing(false);
    return;
  }
  const [lo, hi] = map.box(i0, i1, j0, j1, k0, k1);
  const [dx, dy] = map.dims;
  gl.activeTexture(gl.TEXTURE7);
  gl.bindTexture(gl.TEXTURE_3D, n.drawTexture);
  const align = gl.getParameter(gl.UNPACK_ALIGNMENT);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
  gl.pixelStorei(gl.UNPACK_ROW_LENGTH, dx);
  gl.pixelStorei(gl.UNPACK_IMAGE_HEIGHT, dy);
  gl.pixelStorei(gl.UNPACK_SKIP_PIXELS, lo[0]);
  gl.pixelStorei(gl.UNPACK_SKIP_ROWS, lo[1]);
  gl.pixelStorei(gl.UNPACK_SKIP_IMAGES, lo[2]);
  gl.texSubImage3D(gl.TEXTURE_3D, 0, lo[0], lo[1], lo[2], hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2],
                   gl.RED, gl.UNSIGNED_BYTE, nv.drawBitmap!);
  gl.pixelStorei(gl.UNPACK_ROW_LENGTH, 0);
  gl.pixelStorei(gl.UNPACK_IMAGE_HEIGHT, 0);
  gl.pixelStorei(gl.UNPACK_SKIP_PIXELS, 0);
  gl.pixelStorei(gl.UNPACK_SKIP_ROWS, 0);
  gl.pixelStorei(gl.UNPACK_SKIP_IMAGES, 0);
  gl.pixelStorei(gl.UNPACK_ALIGNMENT, align);
}

function setColormap() {
  const R = [0], G = [0], B = [0], A = [0], I = [0], labels = [""];
  segs.forEach((s, n) => {
    R.push(Math.round(255 * s.color[0])); G.push(Math.round(255 * s.color[1])); B.push(Math.round(255 * s.color[2]));
    A.push(255); I.push(n + 1); labels.push(s.name);
  });
  if (segs.length === 0) { R.push(0); G.push(0); B.push(0); A.push(0); I.push(1); labels.push(""); }
  nv.setDrawColormap({ R, G, B, A, I, labels } as any);
}

/** New segment metadata from the server, keeping the words of segments that remain. */
function setSegments(meta: any[], zero: boolean) {
  const old = new Map(segs.map((s) => [s.id, s]));
  const size = shape[0] * shape[1] * nw;
  segs = meta.map((m) => ({ id: m.id, name: m.name, color: m.color, visible: m.visible,
                            words: !zero && old.has(m.id) ? old.get(m.id)!.words : new Uint32Array(size) }));
  if (!segs.some((s) => s.id === selected)) selected = segs.length ? segs[segs.length - 1].id : "";
  setColormap();
  renderSegments();
}

function renderSegments() {
  const ul = $("segments");
  ul.innerHTML = "";
  for (const s of segs) {
    const li = document.createElement("li");
    li.dataset.id = s.id;
    li.className = s.id === selected ? "selected" : "";
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = `rgb(${s.color.map((c) => Math.round(255 * c)).join(",")})`;
    const vis = document.createElement("input");
    vis.type = "checkbox";
    vis.checked = s.visible;
    vis.title = "visible";
    vis.className = "visible";
    vis.onclick = (e) => { e.stopPropagation(); effect({ effect: "visibility", segment: s.id, visible: vis.checked }); };
    const name = document.createElement("span");
    name.textContent = s.name;
    li.append(vis, sw, name);
    li.onclick = () => { selected = s.id; renderSegments(); };
    ul.append(li);
  }
}

// ----------------------------------------------------------------------------------- WebSocket
function send(header: Header, kind?: string): number {
  const n = seq++;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    message("not connected: the message was not sent");
    return -1;
  }
  ws.send(encode({ v: 1, seq: n, ...header }));
  pending.set(n, { kind: kind ?? header.type, t0: performance.now() });
  return n;
}

function effect(step: Header) {
  send({ type: "effect", step }, step.effect);
}

function resync() {
  if (syncing) return;
  syncing = true;
  send({ type: "resync", from_version: Math.max(0, version) });
}

function applyWords(segId: string, box: number[], payload: Uint8Array) {
  const s = segs.find((x) => x.id === segId);
  if (!s) return null;
  const [k0, j0, w0, bk, bj, bw] = box;
  const src = unpackWords(payload, bk * bj * bw);
  for (let k = 0; k < bk; k++)
    for (let j = 0; j < bj; j++) {
      const o = ((k0 + k) * shape[1] + j0 + j) * nw + w0;
      s.words.set(src.subarray((k * bj + j) * bw, (k * bj + j + 1) * bw), o);
    }
  return [32 * w0, 32 * (w0 + bw), j0, j0 + bj, k0, k0 + bk];
}

function applyLabels(h: Header, payload: Uint8Array) {
  if (!preview) preview = new Uint8Array(shape[0] * shape[1] * shape[2]);
  const [axis, index, r0, c0, rows, cols] = h.voxel_box;
  const lab = unpackBytes(payload, rows * cols);
  const lut = (h.labels as string[]).map((id) => segs.findIndex((s) => s.id === id) + 1);
  const box = [0, 0, 0, 0, 0, 0]; // i0 i1 j0 j1 k0 k1
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const v = lab[r * cols + c];
      let k, j, i;
      if (axis === 0) { k = index; j = r0 + r; i = c0 + c; }
      else if (axis === 1) { k = r0 + r; j = index; i = c0 + c; }
      else { k = r0 + r; j = c0 + c; i = index; }
      preview[(k * shape[1] + j) * shape[2] + i] = v ? lut[v - 1] : 0;
    }
  if (axis === 0) box.splice(0, 6, c0, c0 + cols, r0, r0 + rows, index, index + 1);
  else if (axis === 1) box.splice(0, 6, c0, c0 + cols, index, index + 1, r0, r0 + rows);
  else box.splice(0, 6, index, index + 1, c0, c0 + cols, r0, r0 + rows);
  recompose(box[0], box[1], box[2], box[3], box[4], box[5], false);
}

/** The end of a version (ack to us, version to the others). */
function endVersion(h: Header) {
  if (h.segments) setSegments(h.segments, false);
  if (h.version !== h.base_version) {
    if (h.base_version !== version) { resync(); return; }
    version = h.version;
  }
  if (h.segments) recomposeAll();
}

function onFrame(data: ArrayBuffer) {
  const [h, payload] = decode(data);
  switch (h.type) {
    case "hello":
      syncing = true;
      viewport = { lo: -1, hi: -1 };
      break;
    case "snapshot":
      if (h.phase === "begin") { syncing = true; preview = null; setSegments(h.segments, true); version = h.version; }
      else if (h.phase === "chunk") applyWords(h.segment, h.box, payload);
      else { syncing = false; version = h.version; for (const p of pending.values()) delete p.box; recomposeAll();
             banner(null); status(); subscribeView(); }
      break;
    case "patch": {
      if (h.layer === "preview") { if (h.encoding === "labels-u8+zstd") applyLabels(h, payload); break; }
      if (syncing) break;
      if (h.base_version !== version) { resync(); break; }
      const p = h.seq != null ? pending.get(h.seq) : undefined;
      if (p && p.firstPatch === undefined) {
        p.firstPatch = performance.now() - p.t0;
        if (p.kind === "stroke") { latencies.push(p.firstPatch); showLatency(); }
      }
      const b = applyWords(h.segment, h.box, payload);
      if (b) recompose(b[0], b[1], b[2], b[3], b[4], b[5]);
      break;
    }
    case "preview":
      if (h.phase === "clear" && preview) { preview = null; recomposeAll(); }
      break;
    case "ack": {
      const p = pending.get(h.seq);
      pending.delete(h.seq);
      if (!syncing) endVersion(h);
      if (p) {
        if (p.kind === "stroke") { acks.push(performance.now() - p.t0); showLatency(); }
        if (p.box) recompose(p.box[0], p.box[1], p.box[2], p.box[3], p.box[4], p.box[5]); // drop the optimistic paint
        if (p.kind === "grow") { $("grow-state").textContent = "preview shown: Apply or Cancel"; redraw(); }
        if (p.kind === "accept" || p.kind === "reject") $("grow-state").textContent = "";
      }
      status();
      break;
    }
    case "version":
      if (!syncing) endVersion(h);
      status();
      break;
    case "error": {
      errors.push(h);
      message(`${h.error} (${h.code}): ${h.message}`);
      const p = h.seq != null ? pending.get(h.seq) : undefined;
      if (h.seq != null) pending.delete(h.seq);
      if (p?.box) recompose(p.box[0], p.box[1], p.box[2], p.box[3], p.box[4], p.box[5]);
      if (h.code === "resync_required") { syncing = false; resync(); }
      break;
    }
  }
}

function status() {
  $("status").textContent = ws && ws.readyState === WebSocket.OPEN
    ? `session ${sid} · version ${version} · ${segs.length} segments` : "disconnected";
}

function median(a: number[]) {
  const s = a.slice(-20).sort((x, y) => x - y);
  return s.length ? s[s.length >> 1] : NaN;
}

function showLatency() {
  const last = latencies[latencies.length - 1];
  $("latency").textContent = `stroke→patch: ${last?.toFixed(0) ?? "–"} ms (median ${median(latencies).toFixed(0)} ms, ` +
    `ack ${median(acks).toFixed(0)} ms)`;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const q = new URLSearchParams({ budget: String(1 << 20) });
  if (token) q.set("token", token);
  const sock = new WebSocket(`${proto}://${location.host}/api/sessions/${sid}/ws?${q}`);
  sock.binaryType = "arraybuffer";
  ws = sock;
  sock.onmessage = (ev) => { try { onFrame(ev.data as ArrayBuffer); } catch (e) { message(`bad frame: ${e}`); resync(); } };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    status();
    if (closedByUs) return;
    if (ev.code === 4404) { banner(`session ${sid} no longer exists`); return; }
    banner(`connection lost (${ev.code}${ev.reason ? ": " + ev.reason : ""}); reconnecting…`);
    for (const p of pending.values()) if (p.box) recompose(p.box[0], p.box[1], p.box[2], p.box[3], p.box[4], p.box[5]);
    pending.clear();
    syncing = true;
    setTimeout(connect, 1000);
  };
}

// ---------------------------------------------------------------------------------------- view
function crosshairIjk(): number[] {
  const mm = nv.frac2mm(nv.scene.crosshairPos as any);
  return apply(toIjk, [-mm[0], -mm[1], mm[2]]);
}

/** Previews are cut to the viewport: 64 axial slices around the crosshair. */
function subscribeView() {
  if (syncing || !info) return;
  const k = Math.round(crosshairIjk()[2]);
  if (k >= viewport.lo + 8 && k < viewport.hi - 8) return;
  const lo = Math.max(0, Math.min(shape[0] - 64, k - 32));
  viewport = { lo, hi: lo + 64 };
  send({ type: "subscribe", axis: 0, index: lo, slab: 64 });
}

/** The grid axis (0 k, 1 j, 2 i) closest to the normal of a view (0 axial, 1 coronal, 2 sagittal). */
function gridAxis(axCorSag: number): number {
  const row = [2, 1, 0][axCorSag]; // the world axis of the normal: z, y, x
  let best = 0, bestV = -1;
  for (let d = 0; d < 3; d++) { // native d = i, j, k
    const v = Math.abs(toLps[row][d]) / Math.hypot(toLps[0][d], toLps[1][d], toLps[2][d]);
    if (v > bestV) { bestV = v; best = d; }
  }
  return 2 - best;
}

function tileAt(x: number, y: number): any {
  for (const s of (nv as any).screenSlices) {
    const [l, t, w, hh] = s.leftTopWidthHeight;
    if (x >= l && x < l + w && y >= t && y < t + hh) return s;
  }
  return null;
}

function tileRect(axCorSag: number) {
  const dpr = (nv as any).uiData.dpr || 1;
  const r = $("gl").getBoundingClientRect();
  const s = (nv as any).screenSlices.find((x: any) => x.axCorSag === axCorSag);
  if (!s) return null;
  const [l, t, w, h] = s.leftTopWidthHeight;
  return { x: r.left + l / dpr, y: r.top + t / dpr, width: w / dpr, height: h / dpr };
}

// ------------------------------------------------------------------------------------- painting
type Stroke = { points: number[][]; erase: boolean; axis: number; view: number; diameter: number; shape: string; box: number[];
                lastStamp: number[] | null };
let stroke: Stroke | null = null;

function tool(): string {
  return (document.querySelector("input[name=tool]:checked") as HTMLInputElement).value;
}

/** Paint one brush stamp (world LPS centre) into the drawing locally (optimistic). */
function stampLocal(st: Stroke, c: number[]) {
  const r = st.diameter / 2;
  const ijk = apply(toIjk, c);
  const lo: number[] = [], hi: number[] = [];
  for (let d = 0; d < 3; d++) {
    const half = r * Math.hypot(toIjk[d][0], toIjk[d][1], toIjk[d][2]);
    lo.push(Math.max(0, Math.floor(ijk[d] - half)));
    hi.push(Math.min([shape[2], shape[1], shape[0]][d], Math.ceil(ijk[d] + half) + 1));
  }
  if (st.shape === "disc") {
    const d = 2 - st.axis;
    lo[d] = Math.max(0, Math.round(ijk[d])); hi[d] = Math.min(lo[d] + 1, [shape[2], shape[1], shape[0]][d]);
  }
  const bmp = nv.drawBitmap!;
  const [li, lj, lk] = map!.lut;
  const lab = st.erase ? 0 : segs.findIndex((s) => s.id === selected) + 1;
  for (let k = lo[2]; k < hi[2]; k++)
    for (let j = lo[1]; j < hi[1]; j++)
      for (let i = lo[0]; i < hi[0]; i++) {
        const w = apply(toLps, [i, j, k]);
        if ((w[0] - c[0]) ** 2 + (w[1] - c[1]) ** 2 + (w[2] - c[2]) ** 2 <= r * r) bmp[li[i] + lj[j] + lk[k]] = lab;
      }
  if (hi[0] > lo[0] && hi[1] > lo[1] && hi[2] > lo[2]) {
    const b = st.box;
    b[0] = Math.min(b[0], lo[0]); b[1] = Math.max(b[1], hi[0]); b[2] = Math.min(b[2], lo[1]);
    b[3] = Math.max(b[3], hi[1]); b[4] = Math.min(b[4], lo[2]); b[5] = Math.max(b[5], hi[2]);
    upload(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
  }
}

function addPoint(st: Stroke, ras: number[]) {
  st.points.push(ras);
  const c = [-ras[0], -ras[1], ras[2]];
  const prev = st.lastStamp;
  const step = st.diameter / 4;
  if (prev) {
    const n = Math.ceil(Math.hypot(c[0] - prev[0], c[1] - prev[1], c[2] - prev[2]) / step);
    for (let t = 1; t <= n; t++) stampLocal(st, prev.map((p, d) => p + (c[d] - p) * t / n));
  } else stampLocal(st, c);
  st.lastStamp = c;
  redraw();
}

function eventRas(e: MouseEvent): { ras: number[]; tile: any } | null {
  const dpr = (nv as any).uiData.dpr || 1;
  const r = $("gl").getBoundingClientRect();
  const x = (e.clientX - r.left) * dpr, y = (e.clientY - r.top) * dpr;
  const tile = tileAt(x, y);
  if (!tile || tile.axCorSag > 2) return null;
  const frac = nv.canvasPos2frac([x, y]);
  if (frac[0] < 0) return null;
  const mm = nv.frac2mm(frac);
  return { ras: [mm[0], mm[1], mm[2]], tile };
}

function installPainting() {
  const viewer = $("viewer");
  viewer.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || tool() === "none" || !map || syncing) return;
    const hit = eventRas(e);
    if (!hit) return;
    if (!selected && tool() === "paint") { message("add a segment first"); return; }
    e.stopPropagation(); e.preventDefault();
    stroke = { points: [], erase: tool() === "erase", axis: gridAxis(hit.tile.axCorSag), view: hit.tile.axCorSag,
               diameter: Number(($("diameter") as HTMLInputElement).value) || 5,
               shape: ($("shape") as HTMLSelectElement).value, box: [1e9, -1, 1e9, -1, 1e9, -1], lastStamp: null };
    addPoint(stroke, hit.ras);
  }, true);
  viewer.addEventListener("mousemove", (e) => {
    if (!stroke) return;
    e.stopPropagation(); e.preventDefault();
    const hit = eventRas(e);
    if (hit && hit.tile.axCorSag === stroke.view) addPoint(stroke, hit.ras); // a stroke stays in its view
  }, true);
  const finish = (e: MouseEvent) => {
    if (!stroke) return;
    e.stopPropagation(); e.preventDefault();
    const st = stroke;
    stroke = null;
    const msg = { type: "stroke", mode: "commit", segment: selected || (segs[0]?.id ?? ""), points: st.points,
                  space: "ras", diameter_mm: st.diameter, shape: st.shape, axis: st.axis, erase: st.erase };
    const n = send(msg, "stroke");
    lastStroke = { ...msg, seq: n };
    const p = pending.get(n);
    if (p && st.box[1] > 0) p.box = st.box;
    else if (st.box[1] > 0) recompose(st.box[0], st.box[1], st.box[2], st.box[3], st.box[4], st.box[5]);
  };
  viewer.addEventListener("mouseup", finish, true);
  viewer.addEventListener("mouseleave", finish, true);
}

// -------------------------------------------------------------------------------------- sessions
async function listSessions() {
  const { sessions } = await api("/api/sessions");
  const sel = $("session") as HTMLSelectElement;
  sel.innerHTML = "";
  for (const s of sessions) {
    const o = document.createElement("option");
    o.value = s.id;
    o.textContent = `${s.id} · ${s.image ?? "upload"} · ${s.shape.join("×")}`;
    sel.append(o);
  }
  return sessions as any[];
}

async function openSession(id: string) {
  closedByUs = true;
  ws?.close();
  closedByUs = false;
  sid = id;
  info = await api(`/api/sessions/${id}`);
  shape = info.shape;
  nw = Math.ceil(shape[2] / 32);
  toLps = info.ijk_to_lps;
  toIjk = inv4(toLps);
  const buf = await (await fetch(`/api/sessions/${id}/image`, { headers: authHeaders })).arrayBuffer();
  await nv.loadFromArrayBuffer(buf, `${id}.nii.gz`);
  const vol = nv.volumes[0] as any;
  vol.cal_min = -250; vol.cal_max = 350;
  nv.updateGLVolume();
  nv.createEmptyDrawing();
  nv.setDrawOpacity(0.6);
  map = new RasMap(shape, vol.img2RASstep, vol.img2RASstart, vol.dimsRAS);
  segs = [];
  setColormap();
  ($("export") as HTMLAnchorElement).href = `/api/sessions/${id}/export?format=seg.nrrd`;
  history.replaceState(null, "", `?session=${id}${token ? "&token=" + token : ""}`);
  syncing = true;
  connect();
}

/** Threshold preview, computed here from the image NiiVue holds (native voxel order); the
 *  server's threshold effect (Apply) also honours the masking options, which this preview does not. */
let thresholdShown = false;
function thresholdPreview() {
  const on = ($("th-preview") as HTMLInputElement).checked;
  if (!on) {
    if (thresholdShown) { thresholdShown = false; preview = null; recomposeAll(); }
    return;
  }
  const vol = nv.volumes[0] as any;
  const lab = segs.findIndex((s) => s.id === selected) + 1;
  if (!vol || !lab) { message("select a segment first"); return; }
  const lo = Number(($("th-min") as HTMLInputElement).value), hi = Number(($("th-max") as HTMLInputElement).value);
  const slope = vol.hdr.scl_slope || 1, inter = vol.hdr.scl_inter || 0;
  const img = vol.img as ArrayLike<number>;
  const n = shape[0] * shape[1] * shape[2];
  preview = new Uint8Array(n);
  for (let v = 0; v < n; v++) {
    const x = img[v] * slope + inter;
    if (x >= lo && x <= hi) preview[v] = lab;
  }
  thresholdShown = true;
  recomposeAll();
}

function selectedOrWarn(): string {
  if (!selected) message("select a segment first");
  return selected;
}

function installButtons() {
  $("open").onclick = () => openSession(($("session") as HTMLSelectElement).value).catch((e) => message(String(e)));
  $("add-segment").onclick = () => effect({ effect: "add_segment", name: `Segment_${segs.length + 1}` });
  $("undo").onclick = () => send({ type: "undo" });
  $("redo").onclick = () => send({ type: "redo" });
  $("grow-preview").onclick = () => { $("grow-state").textContent = "computing…"; send({ type: "grow", mode: "preview" }); };
  $("grow-update").onclick = () => send({ type: "grow", mode: "update" });
  $("grow-apply").onclick = () => send({ type: "accept" });
  $("grow-cancel").onclick = () => send({ type: "reject" });
  $("islands").onclick = () => selectedOrWarn() && effect({ effect: "islands", segment: selected, operation: "keep_largest" });
  $("grow-margin").onclick = () => selectedOrWarn() &&
    effect({ effect: "margin", segment: selected, margin_mm: Number(($("margin") as HTMLInputElement).value) });
  $("smooth").onclick = () => selectedOrWarn() &&
    effect({ effect: "smooth", segment: selected, method: "median", kernel_mm: Number(($("smooth-mm") as HTMLInputElement).value) });
  $("masking").onclick = () => {
    const step: Header = { effect: "masking", editable_area: ($("editable-area") as HTMLSelectElement).value,
                           overwrite: ($("overwrite") as HTMLSelectElement).value };
    if (($("use-range") as HTMLInputElement).checked)
      step.intensity_range = [Number(($("range-min") as HTMLInputElement).value), Number(($("range-max") as HTMLInputElement).value)];
    effect(step);
  };
  for (const id of ["th-min", "th-max", "th-preview"]) $(id).addEventListener("input", thresholdPreview);
  $("th-apply").onclick = () => {
    if (!selectedOrWarn()) return;
    effect({ effect: "threshold", segment: selected, min: Number(($("th-min") as HTMLInputElement).value),
             max: Number(($("th-max") as HTMLInputElement).value) });
    ($("th-preview") as HTMLInputElement).checked = false;
    thresholdPreview();
  };
  $("save").onclick = async () => {
    try {
      const r = await api(`/api/sessions/${sid}/save`, { method: "POST", headers: { "Content-Type": "application/json" },
                                                        body: JSON.stringify({ path: ($("save-path") as HTMLInputElement).value }) });
      message(`saved version ${r.version} to ${r.path}`, false);
    } catch (e) { message(String(e)); }
  };
}

async function main() {
  await nv.attachToCanvas($("gl") as HTMLCanvasElement);
  nv.setSliceType(nv.sliceTypeMultiplanar);
  nv.setDrawingEnabled(false);
  nv.onLocationChange = () => subscribeView();
  installButtons();
  installPainting();
  const sessions = await listSessions();
  const want = params.get("session");
  const pick = sessions.find((s) => s.id === want) ?? sessions[sessions.length - 1];
  if (!pick) { message("no sessions: start the server with `gpuseg serve --demo`, or POST /api/sessions"); return; }
  ($("session") as HTMLSelectElement).value = pick.id;
  await openSession(pick.id);
}

// hooks for the browser tests (tests/test_web.py) and for scripting the page from the console
(window as any).gpuseg = {
  get ready() { return !syncing && version >= 0 && ws?.readyState === WebSocket.OPEN; },
  get version() { return version; },
  get session() { return sid; },
  get segments() { return segs.map((s) => ({ id: s.id, name: s.name, visible: s.visible })); },
  get pending() { return pending.size; },
  get lastStroke() { return lastStroke; },
  get latencies() { return latencies.slice(); },
  get errors() { return errors.slice(); },
  /** voxels set in this page's copy of a segment's words */
  voxelCount(id: string) {
    const s = segs.find((x) => x.id === id);
    let n = 0;
    if (s) for (let w of s.words) { while (w) { w &= w - 1; n++; } }
    return n;
  },
  get previewVoxels() { return preview ? preview.reduce((a, v) => a + (v ? 1 : 0), 0) : 0; },
  tileRect,
  dropConnection() { ws?.close(); },
  setCrosshairIjk(i: number, j: number, k: number) {
    const w = apply(toLps, [i, j, k]);
    nv.scene.crosshairPos = nv.mm2frac([-w[0], -w[1], w[2]] as any) as any;
    nv.drawScene();
    subscribeView();
  },
};

main().catch((e) => message(String(e?.stack ?? e)));
