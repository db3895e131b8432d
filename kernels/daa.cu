// daa's CUDA kernels, compiled to PTX by build.rs (feature `cuda`) and loaded by
// src/nn/cuda.rs. Selected by `train.kernels = "device"`; each has a parity test that runs
// on a GPU (tests/parity.rs with PARITY_DEVICE=cuda:N, scripts/gpu-check.sh). The source
// is also plain C: tests/kernels_on_host.rs compiles it with the host's C compiler, runs
// each kernel's grid as loops and holds it to its Rust twin, so that the kernels' logic is
// tested on machines without a GPU.

#ifdef __CUDACC__
#define DAA_KERNEL extern "C" __global__
#else
#define DAA_KERNEL
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
