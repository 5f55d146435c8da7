/* Marching cubes on packed masks, flying-edges style (one thread per row of cubes).
 *
 * The mask box (nk, nj, nw words) is padded by one voxel of zeros on every side. Cube rows
 * and vertex-owning voxel rows are both indexed r = (k + 1) * (nj + 1) + (j + 1) for
 * k in [-1, nk - 1], j in [-1, nj - 1] (relative to the box). Along a row, cube position
 * p = 32 * q + b (q in [0, nw]) is the cube whose base voxel is i = p - 1, so the whole
 * padded row of cubes fits in nw + 1 words:
 *   v(q) = the row's words (voxels 32q .. 32q + 31), s(q) = (v(q) << 1) | (v(q - 1) >> 31)
 *   (voxels 32q - 1 .. 32q + 30): bit b of s and v are the cube's corners at di = 0 and 1.
 *
 * Each voxel row owns the vertices on the edges from its voxels towards +i (at cube
 * position p: between voxels p - 1 and p), +j and +k whose two voxels differ. Vertex order:
 * rows in order; in a row all +i vertices, then +j, then +k, each in increasing i. So every
 * vertex has one owner and one index, whatever the thread order (docs/architecture.md, invariant 4).
 *
 * mc_count: per row, the number of vertices of each kind and of triangles.
 * mc_emit: per row, its vertices (voxel index coordinates i, j, k, in float) and the
 * triangles of its cubes, at offsets given by exclusive prefix sums of the counts. The
 * case tables (gpuseg/surface/_tables.py) are passed in as arrays. INDEX_T is int or i64.
 */

#ifndef INDEX_T
#define INDEX_T int
#endif

DEVICE_FN uint row_word(GLOBAL const uint *w, int nk, int nj, int nw, int k, int j, int q)
{
    if (k < 0 || j < 0 || q < 0 || k >= nk || j >= nj || q >= nw) return 0u;
    return w[((i64)k * nj + j) * nw + q];
}

DEVICE_FN int cube_case(uint s00, uint v00, uint s01, uint v01, uint s10, uint v10, uint s11,
                        uint v11, int b)
{
    return (int)(((s00 >> b) & 1u) | (((v00 >> b) & 1u) << 1) | (((s01 >> b) & 1u) << 2) |
                 (((v01 >> b) & 1u) << 3) | (((s10 >> b) & 1u) << 4) | (((v10 >> b) & 1u) << 5) |
                 (((s11 >> b) & 1u) << 6) | (((v11 >> b) & 1u) << 7));
}

/* With nets = 1 (surface nets) the row's active cube words are also ORed into the grid's table
 * `active` (a segment box at (k0, j0, w0) of a grid with gnj rows per slice and gw1 words per
 * cube row; see below) and triangles are not counted. */
KERNEL void mc_count(GLOBAL const uint *words, int nk, int nj, int nw, GLOBAL const uchar *ntri,
                     GLOBAL uint *nx, GLOBAL uint *ny, GLOBAL uint *nz, GLOBAL uint *nt,
                     int nets, GLOBAL uint *active, int k0, int j0, int w0, int gnj, int gw1)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)(nk + 1) * (nj + 1)) return;
    int k = (int)(r / (nj + 1)) - 1, j = (int)(r % (nj + 1)) - 1;
    i64 grid_row = ((i64)(k0 + k + 1) * (gnj + 1) + (j0 + j + 1)) * gw1 + w0;
    uint cx = 0u, cy = 0u, cz = 0u, ct = 0u;
    uint p00 = 0u, p01 = 0u, p10 = 0u, p11 = 0u;
    for (int q = 0; q <= nw; ++q) {
        uint v00 = row_word(words, nk, nj, nw, k, j, q), v01 = row_word(words, nk, nj, nw, k, j + 1, q);
        uint v10 = row_word(words, nk, nj, nw, k + 1, j, q), v11 = row_word(words, nk, nj, nw, k + 1, j + 1, q);
        uint s00 = (v00 << 1) | (p00 >> 31), s01 = (v01 << 1) | (p01 >> 31);
        uint s10 = (v10 << 1) | (p10 >> 31), s11 = (v11 << 1) | (p11 >> 31);
        cx += POPCOUNT(s00 ^ v00);
        cy += POPCOUNT(v00 ^ v01);
        cz += POPCOUNT(v00 ^ v10);
        uint act = (s00 ^ v00) | (s00 ^ s01) | (s00 ^ v01) | (s00 ^ s10) | (s00 ^ v10) |
                   (s00 ^ s11) | (s00 ^ v11);
        if (nets) {
            if (act != 0u) ATOMIC_OR(&active[grid_row + q], act);
        } else {
            while (act != 0u) {
                int b = lowest_bit(act);
                act &= act - 1u;
                ct += ntri[cube_case(s00, v00, s01, v01, s10, v10, s11, v11, b)];
            }
        }
        p00 = v00; p01 = v01; p10 = v10; p11 = v11;
    }
    nx[r] = cx; ny[r] = cy; nz[r] = cz; nt[r] = ct;
}

KERNEL void mc_emit(GLOBAL const uint *words, int nk, int nj, int nw, int k0, int j0, int i0,
                    GLOBAL const uchar *ntri, GLOBAL const uchar *tris,
                    GLOBAL const uint *nx, GLOBAL const uint *ny, GLOBAL const i64 *vbase,
                    GLOBAL const i64 *tbase, GLOBAL float *verts, GLOBAL INDEX_T *faces)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)(nk + 1) * (nj + 1)) return;
    int k = (int)(r / (nj + 1)) - 1, j = (int)(r % (nj + 1)) - 1;
    i64 rows[4];  /* rows (k + dk, j + dj) at index 2 * dk + dj */
    rows[0] = r; rows[1] = r + 1; rows[2] = r + nj + 1; rows[3] = r + nj + 2;
    uint px[4] = {0u, 0u, 0u, 0u}, py[2] = {0u, 0u}, pz[2] = {0u, 0u};
    uint pv[4] = {0u, 0u, 0u, 0u};
    i64 vx = vbase[r], vy = vbase[r] + nx[r], vz = vbase[r] + nx[r] + ny[r];
    i64 t = tbase[r];
    float fk = (float)(k0 + k), fj = (float)(j0 + j);
    for (int q = 0; q <= nw; ++q) {
        uint v[4], s[4], X[4];
        v[0] = row_word(words, nk, nj, nw, k, j, q);
        v[1] = row_word(words, nk, nj, nw, k, j + 1, q);
        v[2] = row_word(words, nk, nj, nw, k + 1, j, q);
        v[3] = row_word(words, nk, nj, nw, k + 1, j + 1, q);
        for (int m = 0; m < 4; ++m) {
            s[m] = (v[m] << 1) | (pv[m] >> 31);
            X[m] = s[m] ^ v[m];
        }
        uint Y[2], Yp[2], Z[2], Zp[2];
        Y[0] = v[0] ^ v[1]; Y[1] = v[2] ^ v[3];
        Yp[0] = pv[0] ^ pv[1]; Yp[1] = pv[2] ^ pv[3];
        Z[0] = v[0] ^ v[2]; Z[1] = v[1] ^ v[3];
        Zp[0] = pv[0] ^ pv[2]; Zp[1] = pv[1] ^ pv[3];
        /* this row's vertices */
        uint x = X[0];
        while (x != 0u) {
            int b = lowest_bit(x); x &= x - 1u;
            i64 o = 3 * vx++;
            verts[o] = (float)(i0 + 32 * q + b) - 0.5f; verts[o + 1] = fj; verts[o + 2] = fk;
        }
        x = Y[0];
        while (x != 0u) {
            int b = lowest_bit(x); x &= x - 1u;
            i64 o = 3 * vy++;
            verts[o] = (float)(i0 + 32 * q + b); verts[o + 1] = fj + 0.5f; verts[o + 2] = fk;
        }
        x = Z[0];
        while (x != 0u) {
            int b = lowest_bit(x); x &= x - 1u;
            i64 o = 3 * vz++;
            verts[o] = (float)(i0 + 32 * q + b); verts[o + 1] = fj; verts[o + 2] = fk + 0.5f;
        }
        /* this row's cubes */
        uint active = X[0] | (s[0] ^ s[1]) | (s[0] ^ v[1]) | (s[0] ^ s[2]) | (s[0] ^ v[2]) |
                      (s[0] ^ s[3]) | (s[0] ^ v[3]);
        while (active != 0u) {
            int b = lowest_bit(active);
            active &= active - 1u;
            int c = cube_case(s[0], v[0], s[1], v[1], s[2], v[2], s[3], v[3], b);
            int n = 3 * (int)ntri[c];
            uint low = (1u << b) - 1u;
            for (int m = 0; m < n; ++m) {
                int e = (int)tris[36 * c + m];
                int u = e & 1, w = (e >> 1) & 1;
                i64 id;
                if (e < 4) {         /* along i: row (k + w, j + u) */
                    int rr = 2 * w + u;
                    id = vbase[rows[rr]] + px[rr] + POPCOUNT(X[rr] & low);
                } else if (e < 8) {  /* along j: voxel i = p - 1 + u of row (k + w, j) */
                    i64 row = rows[2 * w];
                    uint rank = u ? py[w] + POPCOUNT(Y[w] & low)
                                  : py[w] - (Yp[w] >> 31) + POPCOUNT(((Y[w] << 1) | (Yp[w] >> 31)) & low);
                    id = vbase[row] + nx[row] + rank;
                } else {             /* along k: voxel i = p - 1 + u of row (k, j + w) */
                    i64 row = rows[w];
                    uint rank = u ? pz[w] + POPCOUNT(Z[w] & low)
                                  : pz[w] - (Zp[w] >> 31) + POPCOUNT(((Z[w] << 1) | (Zp[w] >> 31)) & low);
                    id = vbase[row] + nx[row] + ny[row] + rank;
                }
                faces[3 * t + m] = (INDEX_T)id;
            }
            t += n / 3;
        }
        for (int m = 0; m < 4; ++m) { px[m] += POPCOUNT(X[m]); pv[m] = v[m]; }
        py[0] += POPCOUNT(Y[0]); py[1] += POPCOUNT(Y[1]);
        pz[0] += POPCOUNT(Z[0]); pz[1] += POPCOUNT(Z[1]);
    }
}

/* ---- Surface nets on packed masks ----------------------------------------------------
 *
 * One vertex per active cube (a cube whose 8 voxels are not all equal in some segment),
 * numbered over the whole padded grid, so that segments sharing a boundary share its
 * vertices. One quad (two triangles) per crossed voxel edge of a segment, joining the four
 * cubes around that edge, oriented out of the segment. Cube rows of the grid are indexed
 * like the marching-cubes rows above, with gnj rows per slice and gw1 = (words per grid
 * row) + 1 words per cube row; (k0, j0, w0) place a segment's box in the grid. The table of
 * active cubes is filled by mc_count with nets = 1.
 */

/* Per grid cube row: the number of active cubes before each word, and in the row. */
KERNEL void sn_row_prefix(GLOBAL const uint *active, i64 nrows, int gw1, GLOBAL uint *wprefix,
                          GLOBAL uint *rowcount)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    uint c = 0u;
    for (int q = 0; q < gw1; ++q) {
        wprefix[r * gw1 + q] = c;
        c += POPCOUNT(active[r * gw1 + q]);
    }
    rowcount[r] = c;
}

/* The vertices: active cube centres, in voxel index coordinates (i, j, k). */
KERNEL void sn_vertices(GLOBAL const uint *active, i64 nrows, int gnj, int gw1, GLOBAL const i64 *rowbase,
                        GLOBAL float *verts)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    int k = (int)(r / (gnj + 1)) - 1, j = (int)(r % (gnj + 1)) - 1;
    i64 v = rowbase[r];
    for (int q = 0; q < gw1; ++q) {
        uint a = active[r * gw1 + q];
        while (a != 0u) {
            int b = lowest_bit(a); a &= a - 1u;
            verts[3 * v] = (float)(32 * q + b) - 0.5f;
            verts[3 * v + 1] = (float)j + 0.5f;
            verts[3 * v + 2] = (float)k + 0.5f;
            ++v;
        }
    }
}

DEVICE_FN i64 sn_id(GLOBAL const uint *active, GLOBAL const uint *wprefix, GLOBAL const i64 *rowbase,
                    int gnj, int gw1, int K, int J, int P)
{
    i64 r = (i64)(K + 1) * (gnj + 1) + (J + 1);
    int q = P >> 5, b = P & 31;
    return rowbase[r] + wprefix[r * gw1 + q] + POPCOUNT(active[r * gw1 + q] & ((1u << b) - 1u));
}

/* Emit the two triangles of one quad: corners c0..c3 counter-clockwise about the outward normal. */
DEVICE_FN void sn_quad(GLOBAL INDEX_T *faces, i64 t, i64 c0, i64 c1, i64 c2, i64 c3, int flip)
{
    if (flip) { i64 x = c1; c1 = c3; c3 = x; }
    faces[6 * t] = (INDEX_T)c0; faces[6 * t + 1] = (INDEX_T)c1; faces[6 * t + 2] = (INDEX_T)c2;
    faces[6 * t + 3] = (INDEX_T)c0; faces[6 * t + 4] = (INDEX_T)c2; faces[6 * t + 5] = (INDEX_T)c3;
}

/* A segment's quads, per row of its box: the row's +i crossings, then +j, then +k, each in i
 * order, at the row's quad offset qbase (an exclusive prefix sum of nx + ny + nz). */
KERNEL void sn_quads(GLOBAL const uint *words, int nk, int nj, int nw, int k0, int j0, int w0,
                     int gnj, int gw1, GLOBAL const uint *active, GLOBAL const uint *wprefix,
                     GLOBAL const i64 *rowbase, GLOBAL const uint *nx, GLOBAL const uint *ny,
                     GLOBAL const i64 *qbase, GLOBAL INDEX_T *faces)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)(nk + 1) * (nj + 1)) return;
    int k = (int)(r / (nj + 1)) - 1, j = (int)(r % (nj + 1)) - 1;
    int K = k0 + k, J = j0 + j, I0 = 32 * w0;
    i64 tx = qbase[r], ty = qbase[r] + nx[r], tz = qbase[r] + nx[r] + ny[r];
    uint pv0 = 0u;
    for (int q = 0; q <= nw; ++q) {
        uint v0 = row_word(words, nk, nj, nw, k, j, q);
        uint vj = row_word(words, nk, nj, nw, k, j + 1, q);
        uint vk = row_word(words, nk, nj, nw, k + 1, j, q);
        uint s0 = (v0 << 1) | (pv0 >> 31);
        uint x = s0 ^ v0;
        while (x != 0u) {  /* voxels P - 1 | P along i: cubes at position P in rows (K-1|K, J-1|J) */
            int b = lowest_bit(x); x &= x - 1u;
            int P = I0 + 32 * q + b;
            sn_quad(faces, tx++, sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J - 1, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P), (int)((v0 >> b) & 1u));
        }
        x = v0 ^ vj;
        while (x != 0u) {  /* voxel I: J | J + 1; cubes at positions I|I+1 in rows (K-1|K, J) */
            int b = lowest_bit(x); x &= x - 1u;
            int P = I0 + 32 * q + b;
            sn_quad(faces, ty++, sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P + 1),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P + 1), (int)((vj >> b) & 1u));
        }
        x = v0 ^ vk;
        while (x != 0u) {  /* voxel I: K | K + 1; cubes at positions I|I+1 in rows (K, J-1|J) */
            int b = lowest_bit(x); x &= x - 1u;
            int P = I0 + 32 * q + b;
            sn_quad(faces, tz++, sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P + 1),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P + 1),
                    sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P), (int)((vk >> b) & 1u));
        }
        pv0 = v0;
    }
}
