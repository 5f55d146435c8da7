/* Binary median (majority vote) over a box of (2hk+1) x (2hj+1) x (2hi+1) voxels, on packed
 * masks. A voxel is set when more than half of the box's voxels that lie inside the grid are
 * set (a tie leaves it unset). One thread per output word. Words whose whole neighbourhood is
 * uniform (all zero or all one) are decided without counting, so the cost follows the
 * segment's surface, not its volume. Requires hi <= 31.
 */

/* Number of set bits of row word W-1..W+1 (96 bits centred on word W) in window [c - h, c + h]. */
DEVICE_FN int window_count(uint p, uint c, uint n, int b, int h)
{
    /* bit positions relative to the start of word W: window is [b - h, b + h] */
    int lo = b - h, hi = b + h;
    int cnt = 0;
    if (lo < 0) {  /* part in the previous word: bits [32 + lo, 31] */
        cnt += (int)POPCOUNT(p >> (32 + lo));
        lo = 0;
    }
    if (hi > 31) {  /* part in the next word: bits [0, hi - 32] */
        cnt += (int)POPCOUNT(n & ((2u << (hi - 32)) - 1u));
        hi = 31;
    }
    uint m = (hi - lo == 31) ? 0xffffffffu : (((1u << (hi - lo + 1)) - 1u) << lo);
    cnt += (int)POPCOUNT(c & m);
    return cnt;
}

KERNEL void median_majority(GLOBAL uint *out, int k0, int j0, int w0, int nk, int nj, int nw,
                            GLOBAL const uint *src, int sk0, int sj0, int sw0, int snk, int snj, int snw,
                            int hk, int hj, int hi, int gk, int gj, int gi)
{
    i64 gid = GLOBAL_ID;
    if (gid >= (i64)nk * nj * nw) return;
    int k, j, w;
    decode_word(gid, nj, nw, &k, &j, &w);
    int K = k0 + k, J = j0 + j, W = w0 + w;
    uint valid = valid_bits(W, gi);
    /* uniform neighbourhood test */
    uint any = 0u, all = 0xffffffffu;
    for (int dk = -hk; dk <= hk; ++dk) {
        for (int dj = -hj; dj <= hj; ++dj) {
            int KK = K + dk, JJ = J + dj;
            if (KK < 0 || JJ < 0 || KK >= gk || JJ >= gj) continue;
            for (int dw = -1; dw <= 1; ++dw) {
                int WW = W + dw;
                if (WW < 0 || WW * 32 >= gi) continue;
                uint x = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, WW);
                any |= x;
                all &= x | ~valid_bits(WW, gi);
            }
        }
    }
    if (any == 0u) { out[gid] = 0u; return; }
    if (all == 0xffffffffu) { out[gid] = valid; return; }
    /* count per bit, one neighbourhood row at a time (each row's words are read once) */
    int ones[32];
    for (int b = 0; b < 32; ++b) ones[b] = 0;
    int rows_in = 0;
    for (int dk = -hk; dk <= hk; ++dk) {
        int KK = K + dk;
        if (KK < 0 || KK >= gk) continue;
        for (int dj = -hj; dj <= hj; ++dj) {
            int JJ = J + dj;
            if (JJ < 0 || JJ >= gj) continue;
            rows_in += 1;
            uint p = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W - 1);
            uint c = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W);
            uint n = fetch_word(src, sk0, sj0, sw0, snk, snj, snw, KK, JJ, W + 1);
            if ((p | c | n) == 0u) continue;
            for (int b = 0; b < 32; ++b) ones[b] += window_count(p, c, n, b, hi);
        }
    }
    uint bits = 0u;
    for (int b = 0; b < 32; ++b) {
        int I = W * 32 + b;
        if (I >= gi) break;
        int ilo = I - hi < 0 ? 0 : I - hi;
        int ihi = I + hi >= gi ? gi - 1 : I + hi;
        if (2 * ones[b] > rows_in * (ihi - ilo + 1)) bits |= 1u << b;
    }
    out[gid] = bits & valid;
}
