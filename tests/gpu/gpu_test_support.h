// gpu_test_support.h - shared pieces of the GPU kernel tests: the backend under test (loaded from
// the build folder), device buffers, and fresh random inputs.
//
// Kernel tests are SKIPPED with the reason when no backend library loads or it sees no device (the
// CPU-only CI machines); they run on the H100 through the device tool.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gpu/backend_api.h"
#include "rocforge/device.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {

// The backend built next to the test binaries' build folder, with a device; nullptr + reason if none.
inline std::shared_ptr<device::GpuBackend> gpu_backend(std::string* why) {
  static std::shared_ptr<device::GpuBackend> backend;
  static std::string reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    device::LoadOptions opts;
    opts.extra_dirs.push_back(ROCFORGE_BINARY_DIR);
    std::string why_not;
    auto b = device::GpuBackend::load(opts, &why_not);
    if (b && b->device_count() > 0) {
      b->check(b->api().set_device(0), "set device");
      backend = b;
    } else {
      reason = "no GPU: " + why_not;
    }
  }
  if (why) *why = reason;
  return backend;
}

#define ROCFORGE_REQUIRE_GPU(var)                                              \
  std::string var##_why;                                                       \
  auto var = ::rocforge::test::gpu_backend(&var##_why);                        \
  if (!var) GTEST_SKIP() << var##_why

// A device allocation freed on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer(const device::GpuBackend& b, size_t bytes) : b_(&b), bytes_(bytes) {
    b.check(b.api().malloc(&p_, bytes), "malloc");
  }
  ~DeviceBuffer() {
    if (p_) b_->api().free(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T>
  T* as() const { return static_cast<T*>(p_); }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }

  template <typename T>
  void upload(const std::vector<T>& v) {
    b_->check(b_->api().memcpy_h2d(p_, v.data(), v.size() * sizeof(T), nullptr), "upload");
  }
  void upload_bytes(const void* src, size_t n) { b_->check(b_->api().memcpy_h2d(p_, src, n, nullptr), "upload"); }
  template <typename T>
  std::vector<T> download(size_t n) const {
    std::vector<T> v(n);
    b_->check(b_->api().memcpy_d2h(v.data(), p_, n * sizeof(T), nullptr), "download");
    b_->check(b_->api().stream_sync(nullptr), "sync");
    return v;
  }
  // Fills with a NaN pattern (0xff bytes) so unwritten outputs cannot pass.
  void poison() { b_->check(b_->api().memset(p_, 0xff, bytes_, nullptr), "memset"); }
  void zero() { b_->check(b_->api().memset(p_, 0, bytes_, nullptr), "memset"); }

 private:
  const device::GpuBackend* b_;
  void* p_ = nullptr;
  size_t bytes_;
};

template <typename T>
std::unique_ptr<DeviceBuffer> to_device(const device::GpuBackend& b, const std::vector<T>& v) {
  auto d = std::make_unique<DeviceBuffer>(b, v.size() * sizeof(T) + 16);
  d->upload(v);
  return d;
}

// The activations an int8 kernel multiplies: the n values of a quantize_q8 buffer (n int8, padded to
// 16 bytes, then n / 32 float scales), dequantized.
inline std::vector<double> dequantized_q8(const DeviceBuffer& dq, const device::GpuBackend& b, size_t n) {
  const size_t qb = b.api().q8_bytes(static_cast<int>(n));
  const auto raw = dq.download<uint8_t>(qb);
  std::vector<float> d(n / 32);
  std::memcpy(d.data(), raw.data() + (n + 15) / 16 * 16, d.size() * sizeof(float));
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<double>(d[i / 32]) * static_cast<int8_t>(raw[i]);
  return x;
}

// A fresh seed per run (printed by the tests), so every run checks new inputs.
inline uint32_t fresh_seed() { return std::random_device{}(); }

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// y [n_tok][rows] against X W^T of the dequantized rows (row_stride bytes apart in w), in double,
// within the f16 rounding of W and X (each < 2^-11 relative): 2e-3 of sum |w x| plus 1e-5. The
// contract of the GEMMs with f16 operands (matmul_f16's paths).
inline void expect_f16_product(GgmlType t, const std::vector<uint8_t>& w, size_t row_stride,
                               const std::vector<float>& x, const std::vector<float>& y, int rows, int cols,
                               int n_tok) {
  std::vector<float> wf(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    quant::dequantize_row(t, w.data() + static_cast<size_t>(r) * row_stride, wf.data() + static_cast<size_t>(r) * cols,
                          cols);
  for (int tk = 0; tk < n_tok; ++tk)
    for (int r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int c = 0; c < cols; ++c) {
        const double p = static_cast<double>(wf[static_cast<size_t>(r) * cols + c]) * x[static_cast<size_t>(tk) * cols + c];
        ref += p;
        mag += std::fabs(p);
      }
      const float got = y[static_cast<size_t>(tk) * rows + r];
      ASSERT_TRUE(std::isfinite(got)) << "token " << tk << " row " << r;
      ASSERT_NEAR(got, ref, 2e-3 * mag + 1e-5) << "token " << tk << " row " << r;
    }
}

}  // namespace rocforge::test
