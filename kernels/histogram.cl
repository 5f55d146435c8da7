/* edge_histogram: counts of the image values under a mask in bins with given edges, as ITK's
 * Histogram::GetIndex assigns them (gpuseg/ops/itk_thresholds.py). edges holds nbins + 1 doubles:
 * the bins' minima, then the upper bound; bin b holds edges[b] <= v < edges[b + 1]. Values below
 * edges[0], above the upper bound, or NaN are not counted; a value equal to the upper bound goes to
 * the last bin. Specialised with -D IMAGE_T. One thread per mask row (integer atomics: order-free).
 */
KERNEL void edge_histogram(GLOBAL const uint *words, int k0, int j0, int w0, int nk, int nj, int nw,
                           GLOBAL const IMAGE_T *img, int img_nj, int ni, GLOBAL const double *edges, int nbins,
                           GLOBAL uint *hist)
{
    i64 r = GLOBAL_ID;
    if (r >= (i64)nk * nj) return;
    int k, j;
    decode_row(r, nj, &k, &j);
    GLOBAL const uint *row = words + r * nw;
    GLOBAL const IMAGE_T *irow = img + ((i64)(k0 + k) * img_nj + (j0 + j)) * ni;
    double lo = edges[0], up = edges[nbins];
    for (int w = 0; w < nw; ++w) {
        uint x = row[w];
        while (x != 0u) {
            int b = lowest_bit(x);
            x &= x - 1u;
            double v = (double)irow[(w0 + w) * 32 + b];
            if (!(v >= lo)) continue;
            int bin;
            if (v >= up) {
                if (v != up) continue;
                bin = nbins - 1;
            } else {
                int a = 0, c = nbins - 1;
                while (a < c) {
                    int mid = (a + c + 1) / 2;
                    if (v >= edges[mid]) a = mid; else c = mid - 1;
                }
                bin = a;
            }
            ATOMIC_ADD(&hist[bin], 1u);
        }
    }
}
