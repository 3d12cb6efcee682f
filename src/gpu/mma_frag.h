// mma_frag.h - one 16 x 16 x 16 matrix product on one wave's matrix unit, D[m][n] += sum_k A[m][k] B[k][n]
// with f16 inputs and f32 accumulation, behind one interface for the instruction families rocforge
// builds for:
//
//   family                 instruction                    wave  RF_MMA_KIND
//   NVIDIA sm_80+          mma.sync.m16n8k16 (two)        32    1
//   AMD CDNA2/3 (gfx90a,   v_mfma_f32_16x16x16f16         64    2
//     gfx94x)
//   AMD RDNA3 (gfx11)      v_wmma_f32_16x16x16_f16        32    3
//   AMD RDNA4 (gfx12)      v_wmma_f32_16x16x16_f16        32    4   (another operand layout)
//
// Kernels keep both operands in shared memory k-contiguous: A as [m][k] and B transposed, as [n][k],
// rows `ld` halves apart (ld a multiple of 8: rows 16-byte aligned, so each lane's run of k below is
// one aligned vector load, and NVIDIA's ldmatrix gets the 16-byte row addresses it needs). Which lane holds which elements is the only thing that differs between
// the families, and it lives only here: a kernel loads fragments with load_a / load_b, multiplies
// with mma, and finds element e of its accumulator at (c_row(lane, e), c_col(lane, e)). Per family
// (l = lane):
//   NVIDIA  A: rows l/4 and l/4 + 8, k pairs 2(l%4) and 2(l%4) + 8; B likewise per n; C: rows l/4
//           (+8), columns 2(l%4) (+1) of each 8-column half.
//   CDNA    A: row l%16, k 4(l/16) .. +3; B: column l%16, same k; C: rows 4(l/16) .. +3, column l%16.
//   RDNA3   A: row l%16, all 16 k (both half-waves hold the same); B likewise; C: rows 2e + l/16,
//           column l%16.
//   RDNA4   A: row l%16, k 8(l/16) .. +7; B likewise; C: rows 8(l/16) .. +7, column l%16.
// In every family the lanes that hold a given row of C differ only in their low log2(kRowLanes) bits
// (NVIDIA 4 lanes, AMD 16), and whether two elements e, e' of a lane share a row does not depend on
// the lane: row-wise reductions (attention's softmax) shuffle within those lanes. load_b_kn reads B
// stored [k][n] instead (attention's V tile, rows = keys): the same fragment as load_b on B^T.
// Runs (matmul_small.hip): a product over a 32-element chunk does not depend on the order its k are
// taken in, as long as A and B take them in the same order. So each lane takes kChunkRun consecutive
// elements of the chunk from run_start(lane), for each of its kRunRows rows (run_row(lane, i) of the
// fragment's 16) - one contiguous decode of the weights and one vector load of X - and the chunk's
// two 16-k steps (a_from_runs / b_from_runs, step s, from the runs as f16 pairs) take each element
// once; the lanes that share a logical k hold the same run element in A and in B.
// Nothing AMD runs here, so the AMD layouts are checked where they run: the GEMMs pass an exact check
// against the fp32 tile kernel on every device before they serve (gemm_check.h), and the attention
// kernels a check of the prefill kernel against the fp32 one (attention_prefill_mma.hip).
#pragma once

#include "gpu/hip_compat.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define RF_MMA_KIND 1
#elif defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__) || defined(__gfx950__)
#define RF_MMA_KIND 2
#elif defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__) || defined(__gfx1103__) || \
    defined(__gfx1150__) || defined(__gfx1151__)
#define RF_MMA_KIND 3
#elif defined(__gfx1200__) || defined(__gfx1201__)
#define RF_MMA_KIND 4
#else
#define RF_MMA_KIND 0  // the host pass, and devices without a matrix unit: kernels compile to nothing
#endif

namespace rocforge::gpu {

// NVIDIA: c += a (16 x 16, row-major f16) * b (16 x 8, col-major f16), fp32 accumulation, one
// mma.sync.m16n8k16 (also matmul_mma.hip's instruction, with its own fragment order). Elsewhere (the
// host pass, AMD) nothing: callers run only where RF_MMA_KIND == 1.
__device__ inline void rf_mma_m16n8k16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#if RF_MMA_KIND == 1
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c, (void)a, (void)b0, (void)b1;
#endif
}

#if RF_MMA_KIND == 1
struct MmaFrag {
  static constexpr int kWave = 32, kC = 8, kRowLanes = 4;
  struct A { uint32_t r[4]; };  // f16 pairs
  struct B { uint32_t r[4]; };  // [0, 1]: columns 0-7, [2, 3]: columns 8-15
  struct C { float v[kC] = {}; };
  // Four 8 x 8 matrices in one ldmatrix: lanes 8i .. 8i + 7 give the row addresses of matrix i, and
  // lane l receives row l / 4, halves 2 (l % 4) .. +1 of each, which is the mma operand's order when
  // the matrices are taken as below (one instruction where word-by-word loads took four).
  __device__ static void ldsm_x4(uint32_t r[4], const uint16_t* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(rf_smem_addr(p)));
  }
  __device__ static void ldsm_x4_trans(uint32_t r[4], const uint16_t* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(rf_smem_addr(p)));
  }
  // A: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
  __device__ static void load_a(A& a, const uint16_t* s, int ld, int lane) {
    const int i = lane / 8;
    ldsm_x4(a.r, s + (lane % 8 + 8 * (i % 2)) * ld + 8 * (i / 2));
  }
  // B ([n][k]): matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15).
  __device__ static void load_b(B& b, const uint16_t* s, int ld, int lane) {
    const int i = lane / 8;
    ldsm_x4(b.r, s + (lane % 8 + 8 * (i / 2)) * ld + 8 * (i % 2));
  }
  // B stored [k][n]: the same four matrices read transposed (k rows 0-7 / 8-15, n columns 0-7 / 8-15).
  __device__ static void load_b_kn(B& b, const uint16_t* s, int ld, int lane) {
    const int i = lane / 8;
    ldsm_x4_trans(b.r, s + (lane % 8 + 8 * (i % 2)) * ld + 8 * (i / 2));
  }
  __device__ static void mma(C& c, const A& a, const B& b) {
    for (int h = 0; h < 2; ++h) rf_mma_m16n8k16(c.v + 4 * h, a.r, b.r[2 * h], b.r[2 * h + 1]);
  }
  __device__ static int c_row(int lane, int e) { return lane / 4 + 8 * ((e % 4) / 2); }
  __device__ static int c_col(int lane, int e) { return 8 * (e / 4) + 2 * (lane % 4) + e % 2; }
  // Fragments from runs (see "Runs" below): rows g and g + 8 (g = l / 4), elements 8 (l % 4) .. +7;
  // step s takes the run's elements 4s .. 4s + 3 as the k pairs (2t, 2t + 1) and (2t + 8, 2t + 9).
  static constexpr int kRunRows = 2, kChunkRun = 8;
  __device__ static int run_row(int lane, int i) { return lane / 4 + 8 * i; }
  __device__ static int run_start(int lane) { return 8 * (lane % 4); }
  __device__ static void a_from_runs(A& a, const uint32_t (&p)[kRunRows][kChunkRun / 2], int s) {
    a.r[0] = p[0][2 * s], a.r[1] = p[1][2 * s], a.r[2] = p[0][2 * s + 1], a.r[3] = p[1][2 * s + 1];
  }
  __device__ static void b_from_runs(B& b, const uint32_t (&p)[kRunRows][kChunkRun / 2], int s) {
    b.r[0] = p[0][2 * s], b.r[1] = p[0][2 * s + 1], b.r[2] = p[1][2 * s], b.r[3] = p[1][2 * s + 1];
  }
};

#elif RF_MMA_KIND >= 2
// The AMD families: lane l holds row (A) or column (B) l % 16 and a run of kRun consecutive k
// starting at kRun * (l / 16) (RDNA3: all 16, the upper half-wave repeating the lower).
template <int Wave, int Run, int CElems>
struct MmaFragAmd {
  static constexpr int kWave = Wave, kRun = Run, kC = CElems, kRowLanes = 16;
  typedef _Float16 Half __attribute__((ext_vector_type(Run)));
  typedef float Acc __attribute__((ext_vector_type(CElems)));
  struct A { Half h; };
  struct B { Half h; };
  struct C { Acc v = {}; };
  __device__ static int k_of(int lane) { return Run == 16 ? 0 : Run * (lane / 16); }
  __device__ static Half run(const uint16_t* s, int ld, int lane) {
    return *reinterpret_cast<const Half*>(s + (lane % 16) * ld + k_of(lane));
  }
  __device__ static void load_a(A& a, const uint16_t* s, int ld, int lane) { a.h = run(s, ld, lane); }
  __device__ static void load_b(B& b, const uint16_t* s, int ld, int lane) { b.h = run(s, ld, lane); }
  // B stored [k][n]: column lane % 16, the run of k gathered one half at a time.
  __device__ static void load_b_kn(B& b, const uint16_t* s, int ld, int lane) {
    const uint16_t* p = s + k_of(lane) * ld + lane % 16;
#pragma unroll
    for (int j = 0; j < Run; ++j) b.h[j] = __builtin_bit_cast(_Float16, p[j * ld]);
  }
  __device__ static void mma(C& c, const A& a, const B& b) {
#if RF_MMA_KIND == 2
    c.v = __builtin_amdgcn_mfma_f32_16x16x16f16(a.h, b.h, c.v, 0, 0, 0);
#elif RF_MMA_KIND == 3
    c.v = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32(a.h, b.h, c.v);
#else
    c.v = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12(a.h, b.h, c.v);
#endif
  }
  __device__ static int c_row(int lane, int e) {
    return RF_MMA_KIND == 3 ? 2 * e + lane / 16 : CElems * (lane / 16) + e;
  }
  __device__ static int c_col(int lane, int) { return lane % 16; }
  // Fragments from runs (see "Runs" below): row l % 16, the 2 Run elements from 2 Run (l / 16) (RDNA3:
  // all 32, both half-waves); step s takes the run's elements Run s .. Run s + Run - 1 as its k.
  static constexpr int kRunRows = 1, kChunkRun = 2 * Run;
  __device__ static int run_row(int lane, int) { return lane % 16; }
  __device__ static int run_start(int lane) { return Run == 16 ? 0 : 2 * Run * (lane / 16); }
  __device__ static void from_runs(Half& h, const uint32_t (&p)[1][kChunkRun / 2], int s) {
#pragma unroll
    for (int j = 0; j < Run / 2; ++j) {
      const uint32_t v = p[0][Run / 2 * s + j];
      h[2 * j] = __builtin_bit_cast(_Float16, static_cast<uint16_t>(v & 0xffffu));
      h[2 * j + 1] = __builtin_bit_cast(_Float16, static_cast<uint16_t>(v >> 16));
    }
  }
  __device__ static void a_from_runs(A& a, const uint32_t (&p)[1][kChunkRun / 2], int s) { from_runs(a.h, p, s); }
  __device__ static void b_from_runs(B& b, const uint32_t (&p)[1][kChunkRun / 2], int s) { from_runs(b.h, p, s); }
};
#if RF_MMA_KIND == 2
using MmaFrag = MmaFragAmd<64, 4, 4>;
#elif RF_MMA_KIND == 3
using MmaFrag = MmaFragAmd<32, 16, 8>;
#else
using MmaFrag = MmaFragAmd<32, 8, 8>;
#endif

#else
// No matrix unit (and the host pass): the shape constants kernels size themselves by.
struct MmaFrag {
  static constexpr int kWave = 32, kC = 8, kRowLanes = 4;
  struct A {};
  struct B {};
  struct C { float v[kC] = {}; };
  __device__ static void load_a(A&, const uint16_t*, int, int) {}
  __device__ static void load_b(B&, const uint16_t*, int, int) {}
  __device__ static void load_b_kn(B&, const uint16_t*, int, int) {}
  __device__ static void mma(C&, const A&, const B&) {}
  __device__ static int c_row(int, int) { return 0; }
  __device__ static int c_col(int, int) { return 0; }
  static constexpr int kRunRows = 1, kChunkRun = 8;
  __device__ static int run_row(int, int) { return 0; }
  __device__ static int run_start(int) { return 0; }
  __device__ static void a_from_runs(A&, const uint32_t (&)[kRunRows][kChunkRun / 2], int) {}
  __device__ static void b_from_runs(B&, const uint32_t (&)[kRunRows][kChunkRun / 2], int) {}
};
#endif

// Reduces v[e] over each row of a C fragment: across the lanes that share the row (the low
// log2(kRowLanes) bits of the lane), then across a lane's elements of the same row.
template <class M, class Op>
__device__ inline void row_reduce(float (&v)[M::kC], Op op) {
#pragma unroll
  for (int e = 0; e < M::kC; ++e)
    for (int mask = 1; mask < M::kRowLanes; mask *= 2) v[e] = op(v[e], rf_shfl_xor(v[e], mask));
  float r[M::kC];
#pragma unroll
  for (int e = 0; e < M::kC; ++e) {
    r[e] = v[e];
#pragma unroll
    for (int e2 = 0; e2 < M::kC; ++e2)
      if (e2 != e && M::c_row(0, e2) == M::c_row(0, e)) r[e] = op(r[e], v[e2]);
  }
#pragma unroll
  for (int e = 0; e < M::kC; ++e) v[e] = r[e];
}

}  // namespace rocforge::gpu
