/* Grow from seeds (FastGrowCut semantics, reference §6), as a parallel relaxation.
 * Specialised with -D IMAGE_T=<short|ushort|int|float> and -D KEY_T=<uint|u64>.
 *
 * Every voxel of the region holds a key = (path cost << 8) | label, of type KEY_T. A seed voxel
 * starts at (0 << 8) | label, a masked voxel at KT_BLOCKED (never updated, never read as a
 * source), every other voxel at KT_INF. Seeds keep their label. A free voxel's key is the minimum
 * over its 26 neighbours q of key(q) + (cost(q, p) << 8), where cost = |I(p) - I(q)| * scale +
 * lam[offset] (integers: scale and lam are fixed-point, see gpuseg/ops/grow.py). The result is
 * the unique fixed point: the lexicographic minimum of (geodesic distance, label) over all
 * seeds, the same as the CPU's Dijkstra computes.
 *
 * 32-bit keys hold distances below D32_LIMIT. A pass that would offer a larger one to an
 * unreached voxel sets flags[1] instead, and the caller starts again with 64-bit keys (as the
 * CPU's Dijkstra does; docs/grow.md, Memory).
 */

/* the two largest keys: masked, and unreached (D32_LIMIT comes from gpuseg/kernels/constants.py) */
#define KT_BLOCKED ((KEY_T)~(KEY_T)0)
#define KT_INF ((KEY_T)(KT_BLOCKED - (KEY_T)1))

DEVICE_FN int in_bits(GLOBAL const uint *w, int k0, int j0, int w0, int nk, int nj, int nw, int K, int J, int I)
{
    return (int)((fetch_word(w, k0, j0, w0, nk, nj, nw, K, J, I >> 5) >> (I & 31)) & 1u);
}

/* keys of the region box (rk0, rj0, ri0, rnk, rnj, rni): seeds from `labels` (uchar per voxel of
 * the region, 0 = none), blocked where the editable mask (if any) is clear. */
KERNEL void grow_init(GLOBAL KEY_T *keys, GLOBAL const uchar *seed_labels, i64 n,
                      GLOBAL const uint *editable, int ek0, int ej0, int ew0, int enk, int enj, int enw, int use_editable,
                      int rk0, int rj0, int ri0, int rnj, int rni)
{
    i64 v = GLOBAL_ID;
    if (v >= n) return;
    int i = (int)(v % rni);
    i64 t = v / rni;
    int j = (int)(t % rnj), k = (int)(t / rnj);
    if (use_editable && !in_bits(editable, ek0, ej0, ew0, enk, enj, enw, rk0 + k, rj0 + j, ri0 + i)) {
        keys[v] = KT_BLOCKED;
        return;
    }
    uchar l = seed_labels[v];
    keys[v] = l ? (KEY_T)l : KT_INF;
}

/* One pass of a worklist relaxation: every voxel whose bit is set in `active` (one thread per
 * word of it) offers key(v) + (cost(v, q) << 8) to each of its 26 neighbours q with an atomic
 * min; a neighbour whose key dropped is set in `next` for the following pass (and flags[0]
 * = 1). Masked voxels and seeds are never lowered. When a pass lowers nothing, no key can
 * drop: that is the unique fixed point above, whatever the order of the atomics. Only voxels
 * whose key changed are visited, so a pass costs the wavefront, not the region. (Delta-stepping
 * bounds were tried and made PoCL slower: re-relaxations are few here.) */
KERNEL void grow_push(GLOBAL KEY_T *keys, GLOBAL const uchar *seed_labels, GLOBAL const IMAGE_T *img,
                      int img_nj, int img_ni,
                      int rk0, int rj0, int ri0, int rnk, int rnj, int rni,
                      GLOBAL const i64 *lam, i64 scale,
                      GLOBAL const uint *active, GLOBAL uint *next, i64 nwords, GLOBAL int *flags)
{
    i64 gid = GLOBAL_ID;
    if (gid >= nwords) return;
    uint a = active[gid];
    if (a == 0u) return;
    i64 n = (i64)rnk * rnj * rni;
    int any = 0, overflow = 0;
    while (a != 0u) {
        int b = lowest_bit(a);
        a &= a - 1u;
        i64 v = gid * 32 + b;
        if (v >= n) break;
        KEY_T kv = keys[v];
        if (kv >= KT_INF) continue;
        int i = (int)(v % rni);
        i64 t = v / rni;
        int j = (int)(t % rnj), k = (int)(t / rnj);
        double vp = (double)img[((i64)(rk0 + k) * img_nj + (rj0 + j)) * img_ni + (ri0 + i)];
        int o = 0;
        for (int dk = -1; dk <= 1; ++dk) {
            for (int dj = -1; dj <= 1; ++dj) {
                for (int di = -1; di <= 1; ++di, ++o) {
                    if (dk == 0 && dj == 0 && di == 0) continue;
                    int kk = k + dk, jj = j + dj, ii = i + di;
                    if (kk < 0 || jj < 0 || ii < 0 || kk >= rnk || jj >= rnj || ii >= rni) continue;
                    i64 q = ((i64)kk * rnj + jj) * rni + ii;
                    KEY_T kq = keys[q];
                    if (kq <= kv) continue;  /* as good already: no step cost can beat it */
                    if (kq == KT_BLOCKED || seed_labels[q] != 0) continue;
                    double vq = (double)img[((i64)(rk0 + kk) * img_nj + (rj0 + jj)) * img_ni + (ri0 + ii)];
                    double diff = vp > vq ? vp - vq : vq - vp;
                    i64 c = (i64)rint(diff * (double)scale) + lam[o];
                    u64 cand = (u64)kv + ((u64)c << 8);
                    if (sizeof(KEY_T) == 4 && (i64)(cand >> 8) >= D32_LIMIT) {
                        /* not representable: where q is unreached, the caller goes to 64-bit keys
                         * (a reached q holds a lower key already) */
                        if (kq == KT_INF) overflow = 1;
                        continue;
                    }
                    if (cand < (u64)kq) {
                        KEY_T old;
                        if (sizeof(KEY_T) == 4)
                            old = (KEY_T)ATOMIC_MIN_U32((GLOBAL uint *)&keys[q], (uint)cand);
                        else
                            old = (KEY_T)ATOMIC_MIN_U64((GLOBAL u64 *)&keys[q], cand);
                        if (cand < (u64)old) {
                            ATOMIC_OR(&next[q >> 5], 1u << (uint)(q & 31));
                            any = 1;
                        }
                    }
                }
            }
        }
    }
    if (any) flags[0] = 1;
    if (overflow) flags[1] = 1;
}

/* words (box over the region, i0 a multiple of 32) of the voxels whose final label is `label` */
KERNEL void grow_label_words(GLOBAL const KEY_T *keys, int rnk, int rnj, int rni, int lead, int label,
                             GLOBAL uint *out, int nw)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)rnk * rnj * nw) return;
    int w = (int)(gid % nw);
    i64 row = gid / nw;
    uint bits = 0u;
    for (int b = 0; b < 32; ++b) {
        int i = w * 32 + b - lead;
        if (i < 0 || i >= rni) continue;
        KEY_T key = keys[row * rni + i];
        if (key < KT_INF && (int)(key & (KEY_T)255u) == label) bits |= 1u << b;
    }
    out[gid] = bits;
}

/* Incremental update: every listed voxel idx[t] of the region that is not masked becomes a seed
 * of its label (key = label, cost 0). One thread per listed voxel; the indices are distinct. */
KERNEL void grow_set_seeds(GLOBAL KEY_T *keys, GLOBAL const uchar *seed_labels, GLOBAL const i64 *idx, i64 n_idx)
{
    i64 t = GLOBAL_ID;
    if (t >= n_idx) return;
    i64 v = idx[t];
    if (keys[v] != KT_BLOCKED) keys[v] = (KEY_T)seed_labels[v];
}
