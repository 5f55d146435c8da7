/* Connected components on packed masks, by runs of set bits along i.
 *
 * count_runs / fill_runs: each row's runs [start, end] (inclusive, bit index from the box's
 * first word), in i order, at the row's offset (an exclusive prefix sum of the counts).
 * unite_rows: each row joins its runs with the overlapping runs of the earlier neighbour rows
 * (6-connectivity: (k, j-1) and (k-1, j); 26: also (k-1, j-1) and (k-1, j+1), with runs that
 * touch diagonally). Union-find links the larger root to the smaller with atomic min, so the
 * final root of every component is its first run in raster order, whatever the thread order.
 * flatten: every run points to its root. runs_to_words: the runs whose component is selected.
 */

KERNEL void count_runs(GLOBAL const uint *words, i64 nrows, int nw, GLOBAL int *counts)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    GLOBAL const uint *p = words + r * nw;
    uint prev_msb = 0u;
    int c = 0;
    for (int w = 0; w < nw; ++w) {
        uint x = p[w];
        c += (int)POPCOUNT(x & ~((x << 1) | prev_msb));
        prev_msb = x >> 31;
    }
    counts[r] = c;
}

KERNEL void fill_runs(GLOBAL const uint *words, i64 nrows, int nw, GLOBAL const i64 *offsets,
                      GLOBAL int *run_start, GLOBAL int *run_end)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    GLOBAL const uint *p = words + r * nw;
    i64 ns = offsets[r], ne = offsets[r];
    uint prev_msb = 0u;
    for (int w = 0; w < nw; ++w) {
        uint x = p[w];
        uint next_lsb = (w + 1 < nw) ? (p[w + 1] & 1u) : 0u;
        uint s = x & ~((x << 1) | prev_msb);
        uint e = x & ~((x >> 1) | (next_lsb << 31));
        while (s != 0u) { run_start[ns++] = w * 32 + lowest_bit(s); s &= s - 1u; }
        while (e != 0u) { run_end[ne++] = w * 32 + lowest_bit(e); e &= e - 1u; }
        prev_msb = x >> 31;
    }
}

DEVICE_FN i64 uf_find(GLOBAL i64 *parent, i64 a)
{
    i64 p = parent[a];
    while (p != a) { a = p; p = parent[a]; }
    return a;
}

DEVICE_FN void uf_unite(GLOBAL i64 *parent, i64 a, i64 b)
{
    for (;;) {
        a = uf_find(parent, a);
        b = uf_find(parent, b);
        if (a == b) return;
        if (a < b) { i64 t = a; a = b; b = t; }
        i64 old = (i64)ATOMIC_MIN_U64((GLOBAL u64 *)&parent[a], (u64)b);
        if (old == a) return;
        a = old;
    }
}

/* join the runs of rows r and q; touch = 1 lets runs that meet diagonally join (26-connectivity) */
DEVICE_FN void join_rows(GLOBAL i64 *parent, GLOBAL const int *rs, GLOBAL const int *re, i64 a, i64 a_end,
                         i64 b, i64 b_end, int touch)
{
    while (a < a_end && b < b_end) {
        if (rs[a] <= re[b] + touch && rs[b] <= re[a] + touch) uf_unite(parent, a, b);
        if (re[a] < re[b]) ++a; else ++b;
    }
}

KERNEL void unite_rows(GLOBAL const i64 *offsets, int nk, int nj, GLOBAL const int *rs, GLOBAL const int *re,
                       GLOBAL i64 *parent, int full)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)nk * nj) return;
    int k, j;
    decode_row(r, nj, &k, &j);
    i64 a = offsets[r], a_end = offsets[r + 1];
    if (a == a_end) return;
    if (j > 0) join_rows(parent, rs, re, a, a_end, offsets[r - 1], offsets[r], full);
    if (k > 0) {
        i64 q = r - nj;
        join_rows(parent, rs, re, a, a_end, offsets[q], offsets[q + 1], full);
        if (full && j > 0) join_rows(parent, rs, re, a, a_end, offsets[q - 1], offsets[q], 1);
        if (full && j + 1 < nj) join_rows(parent, rs, re, a, a_end, offsets[q + 1], offsets[q + 2], 1);
    }
}

KERNEL void init_parent(GLOBAL i64 *parent, i64 n)
{
    i64 i = GLOBAL_ID;
    if (i < n) parent[i] = i;
}

KERNEL void flatten(GLOBAL i64 *parent, i64 n)
{
    i64 i = GLOBAL_ID;
    if (i < n) parent[i] = uf_find(parent, i);
}

/* words of the runs whose label is selected (selected[label] != 0); one thread per row */
KERNEL void runs_to_words(GLOBAL const i64 *offsets, i64 nrows, int nw, GLOBAL const int *rs,
                          GLOBAL const int *re, GLOBAL const int *labels, GLOBAL const uchar *selected,
                          GLOBAL uint *out)
{
    i64 r = GLOBAL_ID;
    if (r >= nrows) return;
    GLOBAL uint *row = out + r * nw;
    for (int w = 0; w < nw; ++w) row[w] = 0u;
    for (i64 q = offsets[r]; q < offsets[r + 1]; ++q) {
        if (!selected[labels[q]]) continue;
        int s = rs[q], e = re[q];
        for (int w = s >> 5; w <= (e >> 5); ++w) {
            int lo = w * 32 > s ? 0 : s - w * 32;
            int hi = w * 32 + 31 < e ? 31 : e - w * 32;
            uint m = (hi - lo == 31) ? 0xffffffffu : (((1u << (hi - lo + 1)) - 1u) << lo);
            row[w] |= m;
        }
    }
}
