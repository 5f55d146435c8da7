// The server's grid (k, j, i; ijk_to_lps) and NiiVue's RAS-reoriented drawing bitmap.
export type Mat4 = number[][];

export function inv4(m: Mat4): Mat4 {
  // Gauss-Jordan on a 4x4 affine
  const a = m.map((r, i) => [...r, ...[0, 1, 2, 3].map((j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < 4; c++) {
    let p = c;
    for (let r = c + 1; r < 4; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    [a[c], a[p]] = [a[p], a[c]];
    const d = a[c][c];
    for (let j = 0; j < 8; j++) a[c][j] /= d;
    for (let r = 0; r < 4; r++) {
      if (r === c) continue;
      const f = a[r][c];
      for (let j = 0; j < 8; j++) a[r][j] -= f * a[c][j];
    }
  }
  return a.map((r) => r.slice(4));
}

export function apply(m: Mat4, p: number[]): number[] {
  return [0, 1, 2].map((r) => m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]);
}

/** voxel (i, j, k) of the server's grid -> index into NiiVue's drawBitmap, per axis. */
export class RasMap {
  lut: [Int32Array, Int32Array, Int32Array]; // native axis (i, j, k) -> RAS index contribution
  ras: [number, number][]; // native axis d -> [RAS axis, flipped ? 1 : 0]
  dims: number[]; // dimsRAS[1..3]
  constructor(shape: number[], img2RASstep: number[], img2RASstart: number[], dimsRAS: number[]) {
    const [nk, nj, ni] = shape;
    const n = [ni, nj, nk];
    const stride = [1, ni, ni * nj];
    this.dims = [dimsRAS[1], dimsRAS[2], dimsRAS[3]];
    const rasStride = [1, this.dims[0], this.dims[0] * this.dims[1]];
    this.lut = [new Int32Array(ni), new Int32Array(nj), new Int32Array(nk)];
    this.ras = [[0, 0], [1, 0], [2, 0]];
    const used = new Set<number>();
    for (let a = 0; a < 3; a++) {
      const s = Math.abs(img2RASstep[a]);
      let d = [0, 1, 2].find((x) => !used.has(x) && stride[x] === s && n[x] === this.dims[a]);
      if (d === undefined) d = [0, 1, 2].find((x) => !used.has(x) && n[x] === this.dims[a])!;
      used.add(d);
      const flip = img2RASstep[a] < 0;
      this.ras[d] = [a, flip ? 1 : 0];
      for (let v = 0; v < n[d]; v++) this.lut[d][v] = (flip ? n[d] - 1 - v : v) * rasStride[a];
    }
    void img2RASstart; // implied by the steps' signs: start is the far end of each flipped axis
  }
  /** the RAS box [lo[3], hi[3]) (x, y, z) of the native voxel box [i0, i1) x [j0, j1) x [k0, k1) */
  box(i0: number, i1: number, j0: number, j1: number, k0: number, k1: number): [number[], number[]] {
    const lo = [0, 0, 0], hi = [0, 0, 0];
    const nat = [[i0, i1], [j0, j1], [k0, k1]];
    for (let d = 0; d < 3; d++) {
      const [a, flip] = this.ras[d];
      const [s, e] = nat[d];
      const nd = this.lut[d].length;
      lo[a] = flip ? nd - e : s;
      hi[a] = flip ? nd - s : e;
    }
    return [lo, hi];
  }
}
