"""Specs and numba twins of ``kernels/surface.cl`` (marching cubes: mc_count, mc_emit; surface
nets: sn_row_prefix, sn_vertices, sn_quads): same rows, same order, same arguments."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..backends.registry import CTYPES, Kernel
from .prelude import JIT as _JIT, PJIT as _PJIT, ctz32, popc32

INDEX_TYPES = [{"INDEX_T": CTYPES[np.dtype(t)]} for t in (np.int32, np.int64)]
_CUBE_ROWS = lambda words, nk, nj, *rest: (nk + 1) * (nj + 1)  # noqa: E731  one thread per row of cubes
U1 = np.uint32(1)
U31 = np.uint32(31)


@njit(**_JIT)
def _row_word(words, k, j, q):
    nk, nj, nw = words.shape
    if k < 0 or j < 0 or q < 0 or k >= nk or j >= nj or q >= nw:
        return np.uint32(0)
    return words[k, j, q]


@njit(**_JIT)
def _case(s00, v00, s01, v01, s10, v10, s11, v11, b):
    b = np.uint32(b)
    return ((s00 >> b) & U1) | (((v00 >> b) & U1) << np.uint32(1)) | (((s01 >> b) & U1) << np.uint32(2)) \
        | (((v01 >> b) & U1) << np.uint32(3)) | (((s10 >> b) & U1) << np.uint32(4)) \
        | (((v10 >> b) & U1) << np.uint32(5)) | (((s11 >> b) & U1) << np.uint32(6)) \
        | (((v11 >> b) & U1) << np.uint32(7))


MC_COUNT = Kernel("surface", "mc_count", "words:array, nk:i32, nj:i32, nw:i32, ntri:array, nx:array, ny:array, "
                  "nz:array, nt:array, nets:i32, active:array?, k0:i32, j0:i32, w0:i32, gnj:i32, gw1:i32",
                  threads=_CUBE_ROWS, defines={"INDEX_T": None}, specialisations=INDEX_TYPES)


@njit(**_PJIT)
def mc_count(words, nk, nj, nw, ntri, nx, ny, nz, nt, nets, active, k0, j0, w0, gnj, gw1):
    """With ``nets`` the active cube words also go into the grid's table ``active`` (surface
    nets; rows of one segment are disjoint in the grid, so each grid word is written by one
    iteration) and triangles are not counted."""
    nrows = (nk + 1) * (nj + 1)
    for r in prange(nrows):
        k = r // (nj + 1) - 1
        j = r % (nj + 1) - 1
        grid_row = ((k0 + k + 1) * (gnj + 1) + (j0 + j + 1)) * gw1 + w0
        cx = 0
        cy = 0
        cz = 0
        ct = 0
        p00 = np.uint32(0)
        p01 = np.uint32(0)
        p10 = np.uint32(0)
        p11 = np.uint32(0)
        for q in range(nw + 1):
            v00 = _row_word(words, k, j, q)
            v01 = _row_word(words, k, j + 1, q)
            v10 = _row_word(words, k + 1, j, q)
            v11 = _row_word(words, k + 1, j + 1, q)
            s00 = np.uint32((v00 << U1) | (p00 >> U31))
            s01 = np.uint32((v01 << U1) | (p01 >> U31))
            s10 = np.uint32((v10 << U1) | (p10 >> U31))
            s11 = np.uint32((v11 << U1) | (p11 >> U31))
            cx += popc32(np.uint32(s00 ^ v00))
            cy += popc32(np.uint32(v00 ^ v01))
            cz += popc32(np.uint32(v00 ^ v10))
            act = np.uint32((s00 ^ v00) | (s00 ^ s01) | (s00 ^ v01) | (s00 ^ s10) | (s00 ^ v10)
                            | (s00 ^ s11) | (s00 ^ v11))
            if nets:
                active[grid_row + q] |= act
            else:
                while act != 0:
                    b = ctz32(act)
                    act = np.uint32(act & (act - U1))
                    ct += ntri[_case(s00, v00, s01, v01, s10, v10, s11, v11, b)]
            p00 = v00
            p01 = v01
            p10 = v10
            p11 = v11
        nx[r] = cx
        ny[r] = cy
        nz[r] = cz
        nt[r] = ct


MC_EMIT = Kernel("surface", "mc_emit", "words:array, nk:i32, nj:i32, nw:i32, k0:i32, j0:i32, i0:i32, ntri:array, "
                 "tris:array, nx:array, ny:array, vbase:array, tbase:array, verts:array, faces:array",
                 threads=_CUBE_ROWS, defines={"INDEX_T": "faces"}, specialisations=INDEX_TYPES)


@njit(**_PJIT)
def mc_emit(words, nk, nj, nw, k0, j0, i0, ntri, tris, nx, ny, vbase, tbase, verts, faces):
    nrows = (nk + 1) * (nj + 1)
    for r in prange(nrows):
        k = r // (nj + 1) - 1
        j = r % (nj + 1) - 1
        rows = np.empty(4, np.int64)
        rows[0] = r
        rows[1] = r + 1
        rows[2] = r + nj + 1
        rows[3] = r + nj + 2
        px = np.zeros(4, np.int64)
        py = np.zeros(2, np.int64)
        pz = np.zeros(2, np.int64)
        pv = np.zeros(4, np.uint32)
        v = np.empty(4, np.uint32)
        s = np.empty(4, np.uint32)
        X = np.empty(4, np.uint32)
        Y = np.empty(2, np.uint32)
        Yp = np.empty(2, np.uint32)
        Z = np.empty(2, np.uint32)
        Zp = np.empty(2, np.uint32)
        vx = vbase[r]
        vy = vbase[r] + nx[r]
        vz = vbase[r] + nx[r] + ny[r]
        t = tbase[r]
        fk = np.float32(k0 + k)
        fj = np.float32(j0 + j)
        for q in range(nw + 1):
            v[0] = _row_word(words, k, j, q)
            v[1] = _row_word(words, k, j + 1, q)
            v[2] = _row_word(words, k + 1, j, q)
            v[3] = _row_word(words, k + 1, j + 1, q)
            for m in range(4):
                s[m] = (v[m] << U1) | (pv[m] >> U31)
                X[m] = s[m] ^ v[m]
            Y[0] = v[0] ^ v[1]
            Y[1] = v[2] ^ v[3]
            Yp[0] = pv[0] ^ pv[1]
            Yp[1] = pv[2] ^ pv[3]
            Z[0] = v[0] ^ v[2]
            Z[1] = v[1] ^ v[3]
            Zp[0] = pv[0] ^ pv[2]
            Zp[1] = pv[1] ^ pv[3]
            x = X[0]
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                verts[vx, 0] = np.float32(i0 + 32 * q + b) - np.float32(0.5)
                verts[vx, 1] = fj
                verts[vx, 2] = fk
                vx += 1
            x = Y[0]
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                verts[vy, 0] = np.float32(i0 + 32 * q + b)
                verts[vy, 1] = fj + np.float32(0.5)
                verts[vy, 2] = fk
                vy += 1
            x = Z[0]
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                verts[vz, 0] = np.float32(i0 + 32 * q + b)
                verts[vz, 1] = fj
                verts[vz, 2] = fk + np.float32(0.5)
                vz += 1
            active = np.uint32(X[0] | (s[0] ^ s[1]) | (s[0] ^ v[1]) | (s[0] ^ s[2]) | (s[0] ^ v[2])
                               | (s[0] ^ s[3]) | (s[0] ^ v[3]))
            while active != 0:
                b = ctz32(active)
                active = np.uint32(active & (active - U1))
                c = _case(s[0], v[0], s[1], v[1], s[2], v[2], s[3], v[3], b)
                n = 3 * np.int64(ntri[c])
                low = np.uint32((U1 << np.uint32(b)) - U1)
                for m in range(n):
                    e = np.int64(tris[c, m])
                    u = e & 1
                    w = (e >> 1) & 1
                    if e < 4:
                        rr = 2 * w + u
                        idx = vbase[rows[rr]] + px[rr] + popc32(np.uint32(X[rr] & low))
                    elif e < 8:
                        row = rows[2 * w]
                        if u:
                            rank = py[w] + popc32(np.uint32(Y[w] & low))
                        else:
                            rank = py[w] - (Yp[w] >> U31) + popc32(np.uint32(((Y[w] << U1) | (Yp[w] >> U31)) & low))
                        idx = vbase[row] + nx[row] + rank
                    else:
                        row = rows[w]
                        if u:
                            rank = pz[w] + popc32(np.uint32(Z[w] & low))
                        else:
                            rank = pz[w] - (Zp[w] >> U31) + popc32(np.uint32(((Z[w] << U1) | (Zp[w] >> U31)) & low))
                        idx = vbase[row] + nx[row] + ny[row] + rank
                    faces[t + m // 3, m % 3] = idx
                t += n // 3
            for m in range(4):
                px[m] += popc32(X[m])
                pv[m] = v[m]
            py[0] += popc32(Y[0])
            py[1] += popc32(Y[1])
            pz[0] += popc32(Z[0])
            pz[1] += popc32(Z[1])


# --- surface nets (kernels/surface.cl: sn_row_prefix, sn_vertices, sn_quads) --------------------
SN_ROW_PREFIX = Kernel("surface", "sn_row_prefix", "active:array, nrows:i64, gw1:i32, wprefix:array, rowcount:array",
                       threads="nrows", defines={"INDEX_T": None}, specialisations=INDEX_TYPES)


@njit(**_PJIT)
def sn_row_prefix(active, nrows, gw1, wprefix, rowcount):
    for r in prange(nrows):
        c = np.uint32(0)
        for q in range(gw1):
            wprefix[r * gw1 + q] = c
            c += popc32(active[r * gw1 + q])
        rowcount[r] = c


SN_VERTICES = Kernel("surface", "sn_vertices", "active:array, nrows:i64, gnj:i32, gw1:i32, rowbase:array, verts:array",
                     threads="nrows", defines={"INDEX_T": None}, specialisations=INDEX_TYPES)


@njit(**_PJIT)
def sn_vertices(active, nrows, gnj, gw1, rowbase, verts):
    for r in prange(nrows):
        k = r // (gnj + 1) - 1
        j = r % (gnj + 1) - 1
        v = rowbase[r]
        for q in range(gw1):
            a = active[r * gw1 + q]
            while a != 0:
                b = ctz32(a)
                a = np.uint32(a & (a - U1))
                verts[v, 0] = np.float32(32 * q + b) - np.float32(0.5)
                verts[v, 1] = np.float32(j) + np.float32(0.5)
                verts[v, 2] = np.float32(k) + np.float32(0.5)
                v += 1


@njit(**_JIT)
def _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P):
    r = (K + 1) * (gnj + 1) + (J + 1)
    q = P >> 5
    b = np.uint32(P & 31)
    return rowbase[r] + wprefix[r * gw1 + q] + popc32(np.uint32(active[r * gw1 + q] & ((U1 << b) - U1)))


@njit(**_JIT)
def _sn_quad(faces, t, c0, c1, c2, c3, flip):
    if flip:
        c1, c3 = c3, c1
    faces[2 * t, 0] = c0
    faces[2 * t, 1] = c1
    faces[2 * t, 2] = c2
    faces[2 * t + 1, 0] = c0
    faces[2 * t + 1, 1] = c2
    faces[2 * t + 1, 2] = c3


SN_QUADS = Kernel("surface", "sn_quads", "words:array, nk:i32, nj:i32, nw:i32, k0:i32, j0:i32, w0:i32, gnj:i32, "
                  "gw1:i32, active:array, wprefix:array, rowbase:array, nx:array, ny:array, qbase:array, "
                  "faces:array", threads=_CUBE_ROWS, defines={"INDEX_T": "faces"}, specialisations=INDEX_TYPES)


@njit(**_PJIT)
def sn_quads(words, nk, nj, nw, k0, j0, w0, gnj, gw1, active, wprefix, rowbase, nx, ny, qbase, faces):
    for r in prange((nk + 1) * (nj + 1)):
        k = r // (nj + 1) - 1
        j = r % (nj + 1) - 1
        K = k0 + k
        J = j0 + j
        I0 = 32 * w0
        tx = qbase[r]
        ty = qbase[r] + nx[r]
        tz = qbase[r] + nx[r] + ny[r]
        pv0 = np.uint32(0)
        for q in range(nw + 1):
            v0 = _row_word(words, k, j, q)
            vj = _row_word(words, k, j + 1, q)
            vk = _row_word(words, k + 1, j, q)
            s0 = np.uint32((v0 << U1) | (pv0 >> U31))
            x = np.uint32(s0 ^ v0)
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                P = I0 + 32 * q + b
                _sn_quad(faces, tx, _sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J - 1, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P), (v0 >> b) & U1)
                tx += 1
            x = np.uint32(v0 ^ vj)
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                P = I0 + 32 * q + b
                _sn_quad(faces, ty, _sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P + 1),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K - 1, J, P + 1), (vj >> b) & U1)
                ty += 1
            x = np.uint32(v0 ^ vk)
            while x != 0:
                b = ctz32(x)
                x = np.uint32(x & (x - U1))
                P = I0 + 32 * q + b
                _sn_quad(faces, tz, _sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J - 1, P + 1),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P + 1),
                         _sn_id(active, wprefix, rowbase, gnj, gw1, K, J, P), (vk >> b) & U1)
                tz += 1
            pv0 = v0
