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
