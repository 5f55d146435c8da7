/* Segment statistics on packed masks (Slicer's Segment Statistics, reference §5).
 * Specialised with -D IMAGE_T=<short|ushort|int|float>.
 *
 * stats_rows: one thread per mask row (k, j) of the box; walks the set bits in ascending i
 * and accumulates, in that fixed order: the number of set voxels, the sum of their i, and for
 * the non-NaN image values: count, sum, sum of squares (double, no contraction), min and max.
 * stats_slices: one thread per slice, reducing its rows in ascending j. The host reduces the
 * slices in ascending k, so every backend adds in the same order and agrees bit for bit.
 */

#define NSTAT 7  /* n_all, sum_i, n_val, sum_v, sum_v2, min_v, max_v (as double) */

KERNEL void stats_rows(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                       GLOBAL const IMAGE_T *img, int img_nj, int ni, int use_image,
                       GLOBAL i64 *acc_i, GLOBAL double *acc_d)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)nk * nj) return;
    int k, j;
    decode_row(r, nj, &k, &j);
    GLOBAL const uint *row = words + r * nw;
    GLOBAL const IMAGE_T *irow = img + ((i64)(k0 + k) * img_nj + (j0 + j)) * ni;
    i64 n_all = 0, sum_i = 0, n_val = 0;
    double s = 0.0, s2 = 0.0, mn = 0.0, mx = 0.0;
    for (int w = 0; w < nw; ++w) {
        uint x = row[w];
        while (x != 0u) {
            int b = lowest_bit(x);
            x &= x - 1u;
            int i = (w0 + w) * 32 + b;
            n_all += 1;
            sum_i += i;
            if (use_image) {
                double v = (double)irow[i];
                if (v == v) {
                    if (n_val == 0) { mn = v; mx = v; }
                    else { mn = v < mn ? v : mn; mx = v > mx ? v : mx; }
                    n_val += 1;
                    s += v;
                    double sq = v * v;
                    s2 += sq;
                }
            }
        }
    }
    acc_i[3 * r + 0] = n_all;
    acc_i[3 * r + 1] = sum_i;
    acc_i[3 * r + 2] = n_val;
    acc_d[4 * r + 0] = s;
    acc_d[4 * r + 1] = s2;
    acc_d[4 * r + 2] = mn;
    acc_d[4 * r + 3] = mx;
}

KERNEL void stats_slices(GLOBAL const i64 *acc_i, GLOBAL const double *acc_d, int nk, int nj,
                         GLOBAL i64 *out_i, GLOBAL double *out_d)
{
    i64 k = GLOBAL_ID;
    if (k >= nk) return;
    i64 n_all = 0, sum_i = 0, n_val = 0, sum_j = 0;
    double s = 0.0, s2 = 0.0, mn = 0.0, mx = 0.0;
    for (int j = 0; j < nj; ++j) {
        i64 r = k * nj + j;
        i64 n = acc_i[3 * r + 0];
        n_all += n;
        sum_j += n * j;
        sum_i += acc_i[3 * r + 1];
        i64 nv = acc_i[3 * r + 2];
        if (nv > 0) {
            double a = acc_d[4 * r + 2], b = acc_d[4 * r + 3];
            if (n_val == 0) { mn = a; mx = b; }
            else { mn = a < mn ? a : mn; mx = b > mx ? b : mx; }
            n_val += nv;
            s += acc_d[4 * r + 0];
            s2 += acc_d[4 * r + 1];
        }
    }
    out_i[4 * k + 0] = n_all;
    out_i[4 * k + 1] = sum_i;
    out_i[4 * k + 2] = sum_j;
    out_i[4 * k + 3] = n_val;
    out_d[4 * k + 0] = s;
    out_d[4 * k + 1] = s2;
    out_d[4 * k + 2] = mn;
    out_d[4 * k + 3] = mx;
}

/* Histogram of the image values under the mask, for integer images: hist[v - base] += 1
 * (values outside [base, base + nbins) are not counted). Integer atomics: order-independent. */
KERNEL void masked_histogram(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                             GLOBAL const IMAGE_T *img, int img_nj, int ni, int base, int nbins,
                             GLOBAL uint *hist)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)nk * nj) return;
    int k, j;
    decode_row(r, nj, &k, &j);
    GLOBAL const uint *row = words + r * nw;
    GLOBAL const IMAGE_T *irow = img + ((i64)(k0 + k) * img_nj + (j0 + j)) * ni;
    for (int w = 0; w < nw; ++w) {
        uint x = row[w];
        while (x != 0u) {
            int b = lowest_bit(x);
            x &= x - 1u;
            int bin = (int)irow[(w0 + w) * 32 + b] - base;
            if (bin >= 0 && bin < nbins) ATOMIC_ADD(&hist[bin], 1u);
        }
    }
}
