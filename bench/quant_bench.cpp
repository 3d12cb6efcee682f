// quant_bench.cpp - quantize throughput and round-trip error of every weight format on N(0,1) data.
//
// Prints the table of docs/quantization.md: format, bits/weight, relative RMS error of the scale
// search and of naive max-abs scaling, single-thread quantize and dequantize throughput.
// Standalone (no benchmark library): cmake --build build --target quant_bench && build/quant_bench
// Usage: quant_bench [elements (default 4194304)] [threads for quantize_rows (default 1)]
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "quant/quantize_impl.h"
#include "rocforge/quant.h"

using namespace rocforge;

// CPU time of the calling thread: the dev VM's 2 cores are shared with builds, and thread CPU time
// is far less disturbed by that than wall time. (With threads > 1 the quantize column is wall time.)
static double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) / 256 * 256 : int64_t{1} << 22;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  std::mt19937 rng(1234);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(n), y(n);
  for (auto& v : x) v = gauss(rng);
  double sxx = 0;
  for (float v : x) sxx += static_cast<double>(v) * v;

  const GgmlType types[] = {GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,   GgmlType::Q5_0,
                            GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,   GgmlType::Q3_K,   GgmlType::Q4_K,
                            GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K,   GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                            GgmlType::MXFP4};
  std::printf("%-8s %6s %12s %12s %12s %12s\n", "format", "bits/w", "rms(search)", "rms(naive)", "quant Me/s",
              "dequant Me/s");
  auto rms = [&](const std::vector<float>& w) {
    double e = 0;
    for (int64_t i = 0; i < n; ++i) e += (static_cast<double>(w[i]) - x[i]) * (static_cast<double>(w[i]) - x[i]);
    return std::sqrt(e / sxx);
  };
  for (GgmlType t : types) {
    const auto& tr = ggml_type_traits(t);
    std::vector<uint8_t> q(quant::row_bytes(t, n));
    const int64_t rows = n / 4096 > 0 ? n / 4096 : 1, per_row = n / rows;
    auto now = threads > 1 ? wall_seconds : thread_seconds;
    const double t0 = now();
    quant::quantize_rows(t, x.data(), q.data(), rows, per_row, threads);
    const double t1 = now();
    quant::dequantize_row(t, q.data(), y.data(), n);
    const double t2 = now();
    const double e_search = rms(y);
    double e_naive = NAN;
    if (tr.block_elems > 1) {
      quant::quantize_row_naive(t, x.data(), q.data(), n);
      quant::dequantize_row(t, q.data(), y.data(), n);
      e_naive = rms(y);
    }
    const double qs = t1 - t0, ds = t2 - t1;
    std::printf("%-8s %6.3f %12.6f %12.6f %12.1f %12.1f\n", std::string(tr.name).c_str(),
                8.0 * tr.block_bytes / tr.block_elems, e_search, e_naive, n / qs / 1e6, n / ds / 1e6);
  }
  return 0;
}
