// matvec_q8_multi (decode of several sequences: each weight read once for up to 16 tokens) against
// the dequantized weights times each token's own int8 x, for every format with an int8 path, on fresh
// random weights (quantizer output and raw bit patterns), odd row counts and every token count class,
// on both kernels: the register kernels and, where the device has one (NVIDIA sm_90), the staged
// copy-engine kernel (2-8 tokens; long rows split over its waves).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu/repack.h"
#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

// Both tests: the device, the format (skipped without an int8 path) and a fresh seed, named in traces.
class GpuMatvecMulti : public ::testing::TestWithParam<GgmlType> {
 protected:
  void SetUp() override {
    std::string why;
    gpu = gpu_backend(&why);
    if (!gpu) GTEST_SKIP() << why;
    if (!gpu->api().has_matvec_q8(type)) GTEST_SKIP() << ggml_type_name(t) << " has no int8-activation path";
    rng.seed(seed);
  }
  std::string trace() const { return std::string(ggml_type_name(t)) + " seed " + std::to_string(seed); }
  const GgmlType t = GetParam();
  const uint32_t type = static_cast<uint32_t>(t);
  const uint32_t seed = fresh_seed();
  std::shared_ptr<device::GpuBackend> gpu;
  std::mt19937 rng;
};

TEST_P(GpuMatvecMulti, EveryTokenMatchesItsDequantizedProduct) {
  const auto& api = gpu->api();
  SCOPED_TRACE(trace());
  const int be = static_cast<int>(ggml_type_traits(t).block_elems);
  struct Restore {
    const rf_gpu_api& api;
    ~Restore() { api.matvec_q8_set_kernel(-1); }
  } restore{api};
  for (int kernel : {0, 1}) {
    api.matvec_q8_set_kernel(kernel);  // 0: register kernels, 1: staged wherever it applies
    SCOPED_TRACE(kernel ? "staged kernel where it applies" : "register kernels");
    for (bool raw : {false, true}) {
      // 4096: whole groups of eight blocks, so Q4_0 / Q8_0 / Q6_K also run in their device layouts;
      // 14336 (an 8B's ffn_down): rows the staged kernel splits over its waves.
      for (int cols : {be == 256 ? 768 : 96, 4096, be == 256 ? 4352 : 4128, 14336}) {
        for (int rows : {1, 37, 515}) {
          for (int n_tok : {1, 2, 3, 5, 8, 9, 16}) {
            if (cols == 14336 && (rows == 515 || n_tok == 9 || n_tok == 16)) continue;  // (time)
            SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " tokens " +
                         std::to_string(n_tok) + (raw ? " raw bits" : ""));
            const size_t rb = quant::row_bytes(t, cols);
            const auto w = random_weights(t, rows, cols, rng, raw);
            const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols, -2.f, 2.f);
            auto dw = to_device(*gpu, w);
            auto dx = to_device(*gpu, x);
            const size_t n = static_cast<size_t>(n_tok) * cols;
            const size_t qb = api.q8_bytes(static_cast<int>(n));
            DeviceBuffer dq(*gpu, qb);
            gpu->check(api.quantize_q8(dx->as<float>(), static_cast<int>(n), dq.get(), nullptr), "quantize_q8");
            const std::vector<double> xr = dequantized_q8(dq, *gpu, n);
            // The GGUF layout, and the device layout of the same bytes where the upload repacks (gpu/repack.h).
            const uint32_t layout = gpu::device_layout(type, cols);
            std::vector<uint8_t> packed(w.size());
            const bool repacked = gpu::repack_rows(type, w.data(), packed.data(), rows, cols, rb);
            auto dp = repacked ? to_device(*gpu, packed) : nullptr;
            for (int pass = 0; pass < (repacked ? 2 : 1); ++pass) {
              SCOPED_TRACE(pass ? "device layout " + std::to_string(layout) : std::string("GGUF layout"));
              DeviceBuffer dy(*gpu, n_tok * rows * sizeof(float));
              dy.poison();
              gpu->check(api.matvec_q8_multi(pass ? layout : type, pass ? dp->get() : dw->get(), rb, dq.get(),
                                             dy.as<float>(), rows, cols, n_tok, nullptr),
                         "matvec_q8_multi");
              const auto y = dy.download<float>(static_cast<size_t>(n_tok) * rows);
              std::vector<float> row(cols);
              for (int r = 0; r < rows; ++r) {
                quant::dequantize_row(t, w.data() + r * rb, row.data(), cols);
                for (int k = 0; k < n_tok; ++k) {
                  double ref = 0, mag = 0;
                  for (int c = 0; c < cols; ++c) {
                    const double xv = xr[static_cast<size_t>(k) * cols + c];
                    ref += row[c] * xv;
                    mag += std::fabs(row[c] * xv);
                  }
                  ASSERT_NEAR(y[static_cast<size_t>(k) * rows + r], ref, 1e-4 * mag + 1e-6)
                      << "token " << k << " row " << r;
                }
              }
            }
          }
        }
      }
    }
  }
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.matvec_q8_multi(type, buf.get(), 4096, buf.get(), buf.as<float>(), 1, be, 17, nullptr), 0);
  EXPECT_NE(api.matvec_q8_multi(type, buf.get(), 4096, buf.get(), buf.as<float>(), 1, be, 0, nullptr), 0);
}

// A fused buffer's parts (q/k/v, gate/up) in one launch: each part's rows, into its own output, are
// bit for bit the rows of the whole matrix's product (the same kernel and walk; only the stores differ).
// Where the device has no such kernel the call declines (-1) and writes nothing.
TEST_P(GpuMatvecMulti, PartsMatchTheWholeMatrix) {
  const auto& api = gpu->api();
  SCOPED_TRACE(trace());
  const int cols = 4096;
  const std::vector<int> parts = {515, 128, 37};
  const int rows = 515 + 128 + 37;
  const size_t rb = quant::row_bytes(t, cols);
  const auto w = random_weights(t, rows, cols, rng, false);
  auto dw = to_device(*gpu, w);
  bool served = false;
  for (int n_tok : {2, 3, 5}) {
    SCOPED_TRACE("tokens " + std::to_string(n_tok));
    const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols, -2.f, 2.f);
    auto dx = to_device(*gpu, x);
    DeviceBuffer dq(*gpu, api.q8_bytes(n_tok * cols));
    gpu->check(api.quantize_q8(dx->as<float>(), n_tok * cols, dq.get(), nullptr), "quantize_q8");
    DeviceBuffer whole(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
    gpu->check(api.matvec_q8_multi(type, dw->get(), rb, dq.get(), whole.as<float>(), rows, cols, n_tok, nullptr),
               "matvec_q8_multi");
    std::vector<std::unique_ptr<DeviceBuffer>> outs;
    std::vector<float*> ys;
    for (int p : parts) {
      outs.push_back(std::make_unique<DeviceBuffer>(*gpu, static_cast<size_t>(n_tok) * p * sizeof(float)));
      outs.back()->poison();
      ys.push_back(outs.back()->as<float>());
    }
    const int rc = api.matvec_q8_multi_parts(type, dw->get(), rb, dq.get(), cols, n_tok, 3, parts.data(), ys.data(),
                                             nullptr);
    if (rc < 0) continue;  // not served on this device (the executor then multiplies a part at a time)
    served = true;
    gpu->check(rc, "matvec_q8_multi_parts");
    const auto all = whole.download<float>(static_cast<size_t>(n_tok) * rows);
    for (int p = 0, r0 = 0; p < 3; r0 += parts[p], ++p) {
      const auto got = outs[p]->download<float>(static_cast<size_t>(n_tok) * parts[p]);
      for (int k = 0; k < n_tok; ++k)
        for (int r = 0; r < parts[p]; ++r)
          ASSERT_EQ(got[static_cast<size_t>(k) * parts[p] + r], all[static_cast<size_t>(k) * rows + r0 + r])
              << "part " << p << " token " << k << " row " << r;
    }
  }
  const int bad[3] = {8, 0, 8};
  float* ys[3] = {nullptr, nullptr, nullptr};
  EXPECT_GT(api.matvec_q8_multi_parts(type, dw->get(), rb, dw->get(), cols, 2, 3, bad, ys, nullptr), 0);
  if (!served) GTEST_SKIP() << "no multi-token parts kernel on this device (NVIDIA sm_90 only); bad parts refused";
}

const GgmlType kTypes[] = {GgmlType::Q4_0,   GgmlType::Q4_1,   GgmlType::Q5_0,  GgmlType::Q5_1, GgmlType::Q8_0,
                           GgmlType::Q2_K,   GgmlType::Q3_K,   GgmlType::Q4_K,  GgmlType::Q5_K, GgmlType::Q6_K,
                           GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::F16};
INSTANTIATE_TEST_SUITE_P(Formats, GpuMatvecMulti, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace rocforge::test
