// neon_vs_scalar.cpp - the NEON kernel table (src/cpu/kernels_neon.cpp) against the scalar table on
// fresh random inputs. Built for aarch64 and run under qemu-user by scripts/check-aarch64-neon.sh
// (no gtest: a static aarch64 binary needs no aarch64 libraries here). Exits 1 on any mismatch.
//
//   neon_vs_scalar --expect-dotprod     the CPU has sdot: neon_kernels() must exist and be chosen,
//                                       and every kernel must match the scalar one
//   neon_vs_scalar --expect-no-dotprod  an armv8.0 CPU: neon_kernels() must be nullptr and the
//                                       dispatch must run the scalar table
//
// The quantizer and the int8 kernels bit for bit, not within a tolerance: the NEON quantizer is
// specified as identical to the scalar one, and the NEON int8 kernels keep the scalar kernels' float
// operations (their integer dot products are exact), so any difference is a bug (a wrong nibble,
// offset, scale or activation index). Float rows within f32 rounding (float_tolerance).
// Weights come from the quantizers (realistic blocks) and from random bytes (every bit pattern).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "quant/decode.h"
#include "rocforge/quant.h"

namespace rocforge::cpu {
namespace {

int g_failures = 0;
int g_checks = 0;

void fail(const std::string& what) {
  if (++g_failures <= 20) std::fprintf(stderr, "MISMATCH: %s\n", what.c_str());
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<float> random_acts(int64_t T, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(T * n);
  for (auto& v : x) v = nd(rng);
  for (int64_t i = 0; i < T * n; i += 97) x[i] *= 20.0f;  // outliers set the block scales
  return x;
}

std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(0.01f, 2.0f);
  const size_t rb = quant::row_bytes(t, cols);
  std::vector<uint8_t> w(rb * rows);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float m = mag(rng);  // per-row scale, so block scales differ between rows
    for (auto& v : row) v = nd(rng) * m;
    quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  return w;
}

// Weights from random bytes: every bit pattern of codes, high bits and packed scales, not only the
// ones the quantizers emit (all 16 nibbles, extreme 6-bit scales and mins, subnormal fp16 and E8M0
// scales). A block is redrawn while one of its scales or mins decodes to a non-finite or huge
// value: both kernels would then give inf or NaN, which hides a mismatch.
std::vector<uint8_t> random_bit_weights(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  const size_t bb = ggml_type_traits(t).block_bytes;
  std::vector<uint8_t> w(quant::row_bytes(t, cols) * rows);
  std::uniform_int_distribution<int> byte(0, 255);
  quant::AffineBlock blk;
  for (size_t off = 0; off < w.size(); off += bb) {
    for (bool ok = false; !ok;) {
      for (size_t i = 0; i < bb; ++i) w[off + i] = static_cast<uint8_t>(byte(rng));
      ok = quant::decode_block(t, w.data() + off, blk);
      for (int g = 0; ok && g < blk.n / blk.group; ++g)
        ok = std::fabs(blk.scale[g]) <= 1e8f && (!blk.has_min || std::fabs(blk.min[g]) <= 1e8f);
    }
  }
  return w;
}

// Quantized activations of T tokens through one table's quantizer.
struct Acts {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int16_t> s16;
  std::vector<int32_t> lanes;
  QActView view;
  Acts(const KernelTable& k, const std::vector<float>& x, int64_t T, int64_t n, int block)
      : q(T * n), d(T * n / block), ds(T * n / 32), s16(T * n / 16), lanes(T * n / 4) {
    for (int64_t t = 0; t < T; ++t)
      k.quantize_act(x.data() + t * n, n, block, q.data() + t * n, d.data() + t * n / block, s16.data() + t * n / 16,
                     lanes.data() + t * n / 4, ds.data() + t * n / 32);
    view = {block, n, T, q.data(), d.data(), s16.data(), lanes.data(), ds.data()};
  }
};

template <class V>
bool same_bytes(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

void check_quantizer(const KernelTable& neon, std::mt19937& rng) {
  for (int block : {32, 256})
    for (int64_t nb : {1, 3, 7}) {
      const int64_t n = block * nb, T = 3;
      std::vector<float> x = random_acts(T, n, rng);
      // Edge blocks in token 1: all zeros (amax 0 -> id 0), and exact ties (amax 127 -> id 1, so
      // x * id = k + 0.5 must round to even in both).
      for (int i = 0; i < block; ++i) x[n + i] = 0.0f;
      if (nb > 1) {
        for (int i = 0; i < block; ++i) x[n + block + i] = static_cast<float>(i % 64 - 32) + 0.5f;
        x[n + block] = 127.0f;
      }
      const Acts a(scalar_kernels(), x, T, n, block), b(neon, x, T, n, block);
      ++g_checks;
      const std::string what = "quantize_act block " + std::to_string(block) + " n " + std::to_string(n);
      if (!same_bytes(a.q, b.q)) fail(what + ": codes");
      if (!same_bytes(a.d, b.d)) fail(what + ": scales");
      if (!same_bytes(a.s16, b.s16)) fail(what + ": s16");
      if (!same_bytes(a.lanes, b.lanes)) fail(what + ": lanes");
      if (!same_bytes(a.ds, b.ds)) fail(what + ": ds");
    }
}

// tol empty: bit for bit. Otherwise |scalar - neon| <= tol[t * rows + r] (float rows, see check_gemm_f).
void compare_outputs(const std::string& what, const std::vector<float>& ref, const std::vector<float>& got,
                     int64_t rows, int64_t T, const std::vector<double>& tol = {}) {
  ++g_checks;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      const float a = ref[t * rows + r], b = got[t * rows + r];
      const bool ok = tol.empty() ? same_bits(a, b) : std::fabs(double(a) - b) <= tol[t * rows + r];
      if (!ok || std::isnan(b)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, " row %lld token %lld: scalar %.9g neon %.9g", static_cast<long long>(r),
                      static_cast<long long>(t), a, b);
        fail(what + buf);
        return;
      }
    }
}

// Float rows: the NEON kernel keeps the scalar kernel's eight partial sums and final additions, but
// whether the scalar loop's multiply-adds are fused is the compiler's choice (GCC fuses them in
// some loops and not others), so the two agree to f32 rounding, not bit for bit: the bound of
// tests/cpu/matmul_test.cpp, 2e-6 * n * sum|w*x| + 1e-5.
std::vector<double> float_tolerance(GgmlType type, const std::vector<uint8_t>& w, const std::vector<float>& x,
                                    int64_t rows, int64_t n, int64_t T) {
  const size_t rb = quant::row_bytes(type, n);
  std::vector<float> wr(n);
  std::vector<double> tol(T * rows);
  for (int64_t r = 0; r < rows; ++r) {
    quant::dequantize_row(type, w.data() + r * rb, wr.data(), n);
    for (int64_t t = 0; t < T; ++t) {
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wr[i]) * x[t * n + i]);
      tol[t * rows + r] = 2e-6 * n * mag + 1e-5;
    }
  }
  return tol;
}

// gemm_q on one shape: both tables see the same (scalar-quantized) activations.
void check_gemm_q(const KernelTable& neon, GgmlType type, int64_t rows, int64_t cols, int64_t T, int block,
                  std::mt19937& rng, bool bit_weights = false) {
  const std::string what = std::string(ggml_type_name(type)) + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " T=" + std::to_string(T) + " act block " + std::to_string(block) +
                           (bit_weights ? " (random-bit weights)" : "");
  const auto w = bit_weights ? random_bit_weights(type, rows, cols, rng) : random_weights(type, rows, cols, rng);
  const auto x = random_acts(T, cols, rng);
  const Acts a(scalar_kernels(), x, T, cols, block);
  const size_t rb = quant::row_bytes(type, cols);
  std::vector<float> ref(T * rows, NAN), got(T * rows, NAN);
  if (!scalar_kernels().gemm_q(type, w.data(), rb, 0, rows, a.view, ref.data(), rows)) {
    fail(what + ": scalar gemm_q refused");
    return;
  }
  // Rows [1, rows) in a second call: a row range that does not start at 0 must land in place.
  const int64_t split = rows > 1 ? 1 : rows;
  if (!neon.gemm_q(type, w.data(), rb, 0, split, a.view, got.data(), rows) ||
      !neon.gemm_q(type, w.data(), rb, split, rows, a.view, got.data(), rows)) {
    fail(what + ": neon gemm_q refused");
    return;
  }
  compare_outputs(what, ref, got, rows, T);
}

void check_gemm_f(const KernelTable& neon, GgmlType type, int64_t rows, int64_t n, int64_t T, std::mt19937& rng) {
  const std::string what = std::string(ggml_type_name(type)) + " " + std::to_string(rows) + "x" + std::to_string(n) +
                           " T=" + std::to_string(T);
  const auto w = random_weights(type, rows, n, rng);
  const auto x = random_acts(T, n, rng);
  const size_t rb = quant::row_bytes(type, n);
  std::vector<float> ref(T * rows, NAN), got(T * rows, NAN);
  scalar_kernels().gemm_f(type, w.data(), rb, n, 0, rows, x.data(), T, ref.data(), rows);
  if (!neon.gemm_f(type, w.data(), rb, n, 0, rows, x.data(), T, got.data(), rows)) {
    fail(what + ": neon gemm_f refused");
    return;
  }
  compare_outputs(what, ref, got, rows, T, float_tolerance(type, w, x, rows, n, T));
}

// Through cpu::matmul (thread pool, activation buffers, dispatch) at the Neon level vs Scalar.
void check_matmul(GgmlType type, int64_t rows, int64_t cols, int64_t T, std::mt19937& rng) {
  const std::string what = "matmul " + std::string(ggml_type_name(type)) + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " T=" + std::to_string(T);
  const auto w = random_weights(type, rows, cols, rng);
  const auto x = random_acts(T, cols, rng);
  const QMatrix m{w.data(), type, cols, rows, quant::row_bytes(type, cols)};
  ThreadPool pool(2);
  std::vector<float> ref(T * rows, NAN), got(T * rows, NAN);
  set_isa_level(IsaLevel::Scalar);
  matmul(m, x.data(), T, ref.data(), pool);
  set_isa_level(IsaLevel::Neon);
  matmul(m, x.data(), T, got.data(), pool);
  const bool is_float = ggml_type_traits(type).block_elems == 1;
  compare_outputs(what, ref, got, rows, T, is_float ? float_tolerance(type, w, x, rows, cols, T) : std::vector<double>{});
}

// A quantized format without a NEON kernel must be refused (the caller then runs the scalar
// kernel), while the scalar table takes it.
void check_refused(const KernelTable& neon, GgmlType type, std::mt19937& rng) {
  const int64_t n = ggml_type_traits(type).block_elems;
  const auto w = random_weights(type, 1, n, rng);
  const auto x = random_acts(1, n, rng);
  const Acts a(scalar_kernels(), x, 1, n, static_cast<int>(n));
  float y = 0;
  ++g_checks;
  if (!scalar_kernels().gemm_q(type, w.data(), w.size(), 0, 1, a.view, &y, 1))
    fail(std::string(ggml_type_name(type)) + ": the scalar gemm_q refused it too (pick a format it decodes)");
  if (neon.gemm_q(type, w.data(), w.size(), 0, 1, a.view, &y, 1))
    fail(std::string(ggml_type_name(type)) + ": neon gemm_q claimed a format it has no kernel for");
}

// The formats kernels_neon.cpp has an sdot kernel for (by weight block size), and one it has not.
const GgmlType kNeon32[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::MXFP4};
const GgmlType kNeon256[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};
constexpr GgmlType kNoNeonKernel = GgmlType::Q8_K;

int run_dotprod() {
  const KernelTable* neon = neon_kernels();
  if (!neon) {
    std::fprintf(stderr, "neon_kernels() is nullptr although the CPU was expected to have sdot\n");
    return 1;
  }
  if (detected_isa() != IsaLevel::Neon) {
    std::fprintf(stderr, "detected_isa() is %s, expected neon\n", isa_name(detected_isa()));
    return 1;
  }
  std::mt19937 rng(20261126);
  check_quantizer(*neon, rng);

  for (int64_t T : {1, 2, 3, 7, 16}) {
    for (GgmlType t : kNeon32)
      for (int64_t cols : {32, 7 * 32, 18 * 32})
        for (int64_t rows : {1, 5, 13}) check_gemm_q(*neon, t, rows, cols, T, 32, rng);
    for (GgmlType t : kNeon256)
      for (int64_t cols : {256, 3 * 256})
        for (int64_t rows : {1, 5, 13}) {
          check_gemm_q(*neon, t, rows, cols, T, 256, rng);  // act_block_for: one scale per super-block
          check_gemm_q(*neon, t, rows, cols, T, 32, rng);   // the 32-element activations (panel-sized batches)
        }
  }
  // Random-bit weights: one block per row, so no block's result is drowned by larger blocks of the
  // same row and tiny scales (fp16 subnormals, E8M0 e < 2) are compared too; then longer rows.
  for (GgmlType t : kNeon32) check_gemm_q(*neon, t, 512, 32, 2, 32, rng, true);
  for (GgmlType t : kNeon256) check_gemm_q(*neon, t, 512, 256, 2, 256, rng, true);
  for (int64_t T : {1, 5, 16}) {
    for (GgmlType t : kNeon32) check_gemm_q(*neon, t, 13, 11 * 32, T, 32, rng, true);
    for (GgmlType t : kNeon256) {
      check_gemm_q(*neon, t, 13, 3 * 256, T, 256, rng, true);
      check_gemm_q(*neon, t, 13, 3 * 256, T, 32, rng, true);
    }
  }
  check_refused(*neon, kNoNeonKernel, rng);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
    for (int64_t n : {5, 8, 203, 7 * 32})
      for (int64_t T : {1, 3, 7}) check_gemm_f(*neon, t, 13, n, T, rng);

  // Through matmul: every NEON format and a float type. (Every quantized type matmul accepts has a
  // NEON kernel now; Q8_K, the refused one, is not a matmul weight type. The scalar fallback inside
  // matmul runs under --expect-no-dotprod.)
  std::vector<GgmlType> via_matmul(std::begin(kNeon32), std::end(kNeon32));
  via_matmul.insert(via_matmul.end(), std::begin(kNeon256), std::end(kNeon256));
  via_matmul.push_back(GgmlType::F16);
  for (GgmlType t : via_matmul)
    for (int64_t T : {1, 20}) check_matmul(t, 37, ggml_type_traits(t).block_elems == 256 ? 512 : 320, T, rng);

  std::printf("neon_vs_scalar: %d checks, %d mismatches (table '%s', cpu features '%s')\n", g_checks, g_failures,
              neon->name, cpu_feature_string().c_str());
  return g_failures == 0 ? 0 : 1;
}

int run_no_dotprod() {
  if (neon_kernels() != nullptr) {
    std::fprintf(stderr, "neon_kernels() returned a table on a CPU without sdot\n");
    return 1;
  }
  if (detected_isa() != IsaLevel::Scalar) {
    std::fprintf(stderr, "detected_isa() is %s without sdot, expected scalar\n", isa_name(detected_isa()));
    return 1;
  }
  // The scalar fallback still computes: one Q4_0 product against the reference dot product.
  std::mt19937 rng(7);
  const auto w = random_weights(GgmlType::Q4_0, 3, 64, rng);
  const auto x = random_acts(1, 64, rng);
  const QMatrix m{w.data(), GgmlType::Q4_0, 64, 3, quant::row_bytes(GgmlType::Q4_0, 64)};
  ThreadPool pool(1);
  std::vector<float> y(3, NAN);
  matmul(m, x.data(), 1, y.data(), pool);
  for (int r = 0; r < 3; ++r) {
    const float ref = quant::dot_row_ref(GgmlType::Q4_0, w.data() + r * m.row_bytes, x.data(), 64);
    if (!(std::fabs(y[r] - ref) <= 0.05f * (1.0f + std::fabs(ref)))) {
      std::fprintf(stderr, "scalar fallback row %d: %g vs reference %g\n", r, y[r], ref);
      return 1;
    }
  }
  std::printf("neon_vs_scalar: no sdot -> neon_kernels() nullptr, scalar table runs\n");
  return 0;
}

}  // namespace
}  // namespace rocforge::cpu

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "--expect-dotprod") return rocforge::cpu::run_dotprod();
  if (mode == "--expect-no-dotprod") return rocforge::cpu::run_no_dotprod();
  std::fprintf(stderr, "usage: %s --expect-dotprod | --expect-no-dotprod\n", argv[0]);
  return 2;
}
