// daa's CUDA kernels, compiled to PTX by build.rs (feature `cuda`) and loaded by
// src/nn/cuda.rs. Selected by `train.kernels = "device"`; each has a parity test that runs
// on a GPU (tests/parity.rs with PARITY_DEVICE=cuda:N, scripts/gpu-check.sh). The source
// is also plain C: tests/kernels_on_host.rs compiles it with the host's C compiler, runs
// each kernel's grid as loops and holds it to its Rust twin, so that the kernels' logic is
// tested on machines without a GPU.

#ifdef __CUDACC__
#define DAA_KERNEL extern "C" __global__
#define DAA_BARRIER() __syncthreads()
#define DAA_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#else
// Host emulation: the harness runs a block as one thread (blockDim.x = 1), which takes
// every iteration of each phase's strided loop in turn; the barriers between phases are
// then no-ops, and the dynamic shared memory is the harness's `daa_shared`.
#define DAA_KERNEL
#define DAA_BARRIER()
#define DAA_DYNAMIC_SHARED(type, name) type *name = (type *)daa_shared
#endif

// ---------------------------------------------------------------------------------------
// Dropout masks from a seeded ChaCha8 stream, one thread per 16-word block of the stream:
// the twin of `mask_at` in src/nn/counter_mask.rs, which the CPU tests hold to
// rand_chacha's stream. Word w of the stream is word w % 16 of block w / 16; the mask's
// element i is word start + i: `scale` where it is below `threshold`, else 0.

#define DAA_ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define DAA_QUARTER(a, b, c, d)                                                             \
  a += b; d ^= a; d = DAA_ROTL(d, 16);                                                      \
  c += d; b ^= c; b = DAA_ROTL(b, 12);                                                      \
  a += b; d ^= a; d = DAA_ROTL(d, 8);                                                       \
  c += d; b ^= c; b = DAA_ROTL(b, 7);

DAA_KERNEL void dropout_mask_chacha8(
    float *out, unsigned long long n, unsigned long long start,
    unsigned int k0, unsigned int k1, unsigned int k2, unsigned int k3,
    unsigned int k4, unsigned int k5, unsigned int k6, unsigned int k7,
    unsigned long long nonce, unsigned long long threshold, float scale) {
  const unsigned long long block =
      start / 16 + (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long end = start + n;
  if (block * 16 >= end) return;
  const unsigned int input[16] = {
      0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
      k0, k1, k2, k3, k4, k5, k6, k7,
      (unsigned int)block, (unsigned int)(block >> 32),
      (unsigned int)nonce, (unsigned int)(nonce >> 32)};
  unsigned int x0 = input[0], x1 = input[1], x2 = input[2], x3 = input[3];
  unsigned int x4 = input[4], x5 = input[5], x6 = input[6], x7 = input[7];
  unsigned int x8 = input[8], x9 = input[9], x10 = input[10], x11 = input[11];
  unsigned int x12 = input[12], x13 = input[13], x14 = input[14], x15 = input[15];
  for (int round = 0; round < 4; ++round) {  // 8 rounds: 4 double rounds
    DAA_QUARTER(x0, x4, x8, x12);
    DAA_QUARTER(x1, x5, x9, x13);
    DAA_QUARTER(x2, x6, x10, x14);
    DAA_QUARTER(x3, x7, x11, x15);
    DAA_QUARTER(x0, x5, x10, x15);
    DAA_QUARTER(x1, x6, x11, x12);
    DAA_QUARTER(x2, x7, x8, x13);
    DAA_QUARTER(x3, x4, x9, x14);
  }
  const unsigned int words[16] = {
      x0 + input[0], x1 + input[1], x2 + input[2], x3 + input[3],
      x4 + input[4], x5 + input[5], x6 + input[6], x7 + input[7],
      x8 + input[8], x9 + input[9], x10 + input[10], x11 + input[11],
      x12 + input[12], x13 + input[13], x14 + input[14], x15 + input[15]};
#pragma unroll
  for (int w = 0; w < 16; ++w) {
    const unsigned long long position = block * 16 + w;
    if (position >= start && position < end) {
      out[position - start] = (unsigned long long)words[w] < threshold ? scale : 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The embedding lookup and its deterministic backward (twins: `Lookup` and `SegmentSum`
// in src/nn/lookup.rs). `ids` is the `(batch, fields)` index matrix, row-major; each field's
// indices carry the field's offset into the one table, so no index occurs in two fields.

// out[j, c] = table[ids[j], c] for the n = batch * fields positions j, one thread per
// element.
DAA_KERNEL void embedding_gather(const float *table, const unsigned int *ids, float *out,
                                 unsigned long long n, unsigned int dim) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * dim) return;
  const unsigned long long j = i / dim, c = i % dim;
  out[i] = table[(unsigned long long)ids[j] * dim + c];
}

// The table's gradient from the lookup's: out[id, c] = the sum over the batch rows b whose
// field holds id of grad[b, field, c], added from 0 in increasing b, as the CPU's
// index_add adds them (same bits). One block per field: the field's (id, row) pairs are
// sorted in shared memory (bitonic, `padded` = batch rounded up to a power of two), then
// each (first pair of an id, column) sums its segment. Every id has one writer and no
// float is added atomically: the result does not depend on thread timing. Rows of `out`
// that no index names are left as they are (zeroed by the caller).
DAA_KERNEL void embedding_segment_sum(const float *grad, const unsigned int *ids, float *out,
                                      unsigned int batch, unsigned int fields,
                                      unsigned int dim, unsigned int padded) {
  DAA_DYNAMIC_SHARED(unsigned int, pairs);  // keys[padded], then rows[padded]
  unsigned int *keys = pairs, *rows = pairs + padded;
  const unsigned int field = blockIdx.x;
  for (unsigned int i = threadIdx.x; i < padded; i += blockDim.x) {
    keys[i] = i < batch ? ids[(unsigned long long)i * fields + field] : 0xffffffffu;
    rows[i] = i;
  }
  DAA_BARRIER();
  for (unsigned int k = 2; k <= padded; k <<= 1) {
    for (unsigned int j = k >> 1; j > 0; j >>= 1) {
      for (unsigned int i = threadIdx.x; i < padded; i += blockDim.x) {
        const unsigned int l = i ^ j;
        if (l > i) {
          const int ascending = (i & k) == 0;
          const int greater = keys[i] > keys[l] || (keys[i] == keys[l] && rows[i] > rows[l]);
          if (greater == ascending) {
            const unsigned int key = keys[i], row = rows[i];
            keys[i] = keys[l];
            rows[i] = rows[l];
            keys[l] = key;
            rows[l] = row;
          }
        }
      }
      DAA_BARRIER();
    }
  }
  for (unsigned long long t = threadIdx.x; t < (unsigned long long)batch * dim; t += blockDim.x) {
    const unsigned int k = (unsigned int)(t / dim), c = (unsigned int)(t % dim);
    if (k > 0 && keys[k] == keys[k - 1]) continue;
    const unsigned int id = keys[k];
    float sum = 0.0f;
    for (unsigned int m = k; m < batch && keys[m] == id; ++m) {
      sum += grad[((unsigned long long)rows[m] * fields + field) * dim + c];
    }
    out[(unsigned long long)id * dim + c] = sum;
  }
}

// ---------------------------------------------------------------------------------------
// Adam's update in two passes, the CPU's fused kernels' twins (`Moments` and `Apply` in
// src/nn/fused_adam.rs), operation for operation: build.rs compiles with -fmad=false, so
// no product is fused into an addition, and sqrtf and the division round as IEEE does, as
// on the CPU (same bits). One thread per element.

// moments = [m; v] (2n): g = grad + l2 p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g.
DAA_KERNEL void adam_moments(float *moments, const float *grad, const float *param,
                             unsigned long long n, float beta1, float beta2, float l2) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = grad[i] + l2 * param[i];
  moments[i] = beta1 * moments[i] + (1.0f - beta1) * g;
  moments[n + i] = beta2 * moments[n + i] + (1.0f - beta2) * g * g;
}

// p = p (1 - decoupled) - step_size * m / (sqrt(v) / correction2 + eps).
DAA_KERNEL void adam_apply(float *param, const float *moments, unsigned long long n,
                           float step_size, float correction2, float eps, float decoupled) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float denom = sqrtf(moments[n + i]) / correction2 + eps;
  param[i] = param[i] * (1.0f - decoupled) - step_size * (moments[i] / denom);
}

// ---------------------------------------------------------------------------------------
// The gated mixture of experts, the twins of `Mixture` and `MixtureGrad` in
// src/nn/mixture.rs, sum for sum: experts (E, B, D), gates (B, G, E).

// out[b, g, c] = sum over e (in order, from 0) of gates[b, g, e] experts[e, b, c]. One
// thread per output element.
DAA_KERNEL void mixture_forward(const float *experts, const float *gates, float *out,
                                unsigned int n_e, unsigned int batch, unsigned int n_g,
                                unsigned int width) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (unsigned long long)batch * n_g * width) return;
  const unsigned long long row = i / width, c = i % width, b = row / n_g;
  float o = 0.0f;
  for (unsigned int e = 0; e < n_e; ++e) {
    o += gates[row * n_e + e] * experts[((unsigned long long)e * batch + b) * width + c];
  }
  out[i] = o;
}

// Packed [d experts (E, B, D), d gates (B, G, E)] from the output's gradient (B, G, D):
// d experts[e, b, c] = sum over g (in order, from 0) of gates[b, g, e] grad[b, g, c];
// d gates[b, g, e] = grad[b, g, :] . experts[e, b, :] in eight interleaved partial sums,
// as `dot` in src/nn/mixture.rs adds them (Rust's float sums start from -0). One thread
// per packed element.
DAA_KERNEL void mixture_backward(const float *experts, const float *gates, const float *grad,
                                 float *out, unsigned int n_e, unsigned int batch,
                                 unsigned int n_g, unsigned int width) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long n_experts = (unsigned long long)n_e * batch * width;
  if (i < n_experts) {
    const unsigned long long row = i / width, c = i % width;
    const unsigned long long e = row / batch, b = row % batch;
    float o = 0.0f;
    for (unsigned int g = 0; g < n_g; ++g) {
      const unsigned long long at = b * n_g + g;
      o += gates[at * n_e + e] * grad[at * width + c];
    }
    out[i] = o;
    return;
  }
  const unsigned long long j = i - n_experts;
  if (j >= (unsigned long long)batch * n_g * n_e) return;
  const unsigned long long row = j / n_e, e = j % n_e, b = row / n_g;
  const float *x = grad + row * width;
  const float *y = experts + (e * batch + b) * width;
  const unsigned int whole = width / 8 * 8;
  float partial[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (unsigned int k = 0; k < whole; k += 8) {
    for (unsigned int l = 0; l < 8; ++l) partial[l] += x[k + l] * y[k + l];
  }
  float tail = -0.0f;
  for (unsigned int k = whole; k < width; ++k) tail += x[k] * y[k];
  float sum = -0.0f;
  for (unsigned int l = 0; l < 8; ++l) sum += partial[l];
  out[i] = sum + tail;
}

// ---------------------------------------------------------------------------------------
// Training-mode BatchNorm -> ReLU -> dropout and its backward, the twins of
// `NormReluDropout` and `NormReluDropoutGrad` in src/nn/fused_norm.rs, sum for sum: x is
// (groups, batch, features); weight and bias (groups * features); the output puts each of
// `split` equal parts of the features in a plane of its own: (groups * split, batch,
// features / split). `mask` (x's layout, 0 or 1/(1-p)) may be null: no dropout. Column
// sums run over the batch in row order in double precision, one thread per column.

#define DAA_NORM_EPS 1e-5

// Where element (g, row, f) of the input lands in the output.
#define DAA_NORM_OUT(g, row, f, batch, features, split)                                     \
  ((((unsigned long long)(g) * (split) + (f) / ((features) / (split))) * (batch) + (row)) *  \
       ((features) / (split)) +                                                              \
   (f) % ((features) / (split)))

// Per column: stats = [mean | variance | 1/std] (3 x columns) and terms = [scale | shift]
// (2 x columns), scale = weight / std, shift = bias - mean * scale.
DAA_KERNEL void norm_stats(const float *x, const float *weight, const float *bias,
                           float *stats, float *terms, unsigned int groups,
                           unsigned int batch, unsigned int features) {
  const unsigned long long column = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long columns = (unsigned long long)groups * features;
  if (column >= columns) return;
  const unsigned long long g = column / features, f = column % features;
  double sum = 0.0, squares = 0.0;
  for (unsigned int row = 0; row < batch; ++row) {
    const double v = x[(g * batch + row) * features + f];
    sum += v;
    squares += v * v;
  }
  const double mean = sum / batch;
  double variance = squares / batch - mean * mean;
  variance = variance > 0.0 ? variance : 0.0;  // as f64::max(v, 0): NaN and below 0 to 0
  const float inverse_std = (float)(1.0 / sqrt(variance + DAA_NORM_EPS));
  const float mean32 = (float)mean;
  const float scale = inverse_std * weight[column];
  stats[column] = mean32;
  stats[columns + column] = (float)variance;
  stats[2 * columns + column] = inverse_std;
  terms[column] = scale;
  terms[columns + column] = bias[column] - mean32 * scale;
}

// out = max(0, x * scale + shift) * mask, one thread per element of x.
DAA_KERNEL void norm_apply(const float *x, const float *terms, const float *mask, float *out,
                           unsigned int groups, unsigned int batch, unsigned int features,
                           unsigned int split) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long columns = (unsigned long long)groups * features;
  if (i >= columns * batch) return;
  const unsigned long long f = i % features, g = i / features / batch;
  const unsigned long long row = i / features % batch, column = g * features + f;
  float y = fmaxf(x[i] * terms[column] + terms[columns + column], 0.0f);
  if (mask) y = y * mask[i];
  out[DAA_NORM_OUT(g, row, f, batch, features, split)] = y;
}

// The gradient reaching the normalised value: through dropout's scale and ReLU's gate.
#define DAA_GATED(y, grad, kept) ((y) > 0.0f ? (grad) * (kept) : 0.0f)

// Per column: the sums of dz and dz x_hat over the batch, into the packed output's dw and
// db (after dx: packed = [dx | dw | db]) and terms = [gain | mean dz | mean dz x_hat].
DAA_KERNEL void norm_grad_sums(const float *x, const float *y, const float *grad,
                               const float *stats, const float *weight, float *packed,
                               float *terms, float kept, unsigned int groups,
                               unsigned int batch, unsigned int features,
                               unsigned int split) {
  const unsigned long long column = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long columns = (unsigned long long)groups * features;
  if (column >= columns) return;
  const unsigned long long g = column / features, f = column % features;
  const float mean = stats[column], inverse_std = stats[2 * columns + column];
  double dz_sum = 0.0, dz_xhat_sum = 0.0;
  for (unsigned int row = 0; row < batch; ++row) {
    const unsigned long long at = DAA_NORM_OUT(g, row, f, batch, features, split);
    const float d = DAA_GATED(y[at], grad[at], kept);
    const float v = x[(g * batch + row) * features + f];
    dz_sum += d;
    dz_xhat_sum += d * (v - mean) * inverse_std;
  }
  const unsigned long long elements = columns * batch;
  packed[elements + column] = (float)dz_xhat_sum;
  packed[elements + columns + column] = (float)dz_sum;
  terms[column] = inverse_std * weight[column];
  terms[columns + column] = (float)(dz_sum / batch);
  terms[2 * columns + column] = (float)(dz_xhat_sum / batch);
}

// dx = gain (dz - mean(dz) - x_hat mean(dz x_hat)), one thread per element of x.
DAA_KERNEL void norm_grad_input(const float *x, const float *y, const float *grad,
                                const float *stats, const float *terms, float *packed,
                                float kept, unsigned int groups, unsigned int batch,
                                unsigned int features, unsigned int split) {
  const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned long long columns = (unsigned long long)groups * features;
  if (i >= columns * batch) return;
  const unsigned long long f = i % features, g = i / features / batch;
  const unsigned long long row = i / features % batch, column = g * features + f;
  const unsigned long long at = DAA_NORM_OUT(g, row, f, batch, features, split);
  const float x_hat = (x[i] - stats[column]) * stats[2 * columns + column];
  packed[i] = terms[column] * (DAA_GATED(y[at], grad[at], kept) - terms[columns + column] -
                               x_hat * terms[2 * columns + column]);
}
