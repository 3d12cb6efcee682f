// cpu_matmul_bench.cpp - throughput of the CPU matmul kernels per weight format and ISA level.
//
// For each format: a W[rows, cols] matrix of random weights, y = W x for T tokens, timed by the
// calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy shared machine that time-slices
// us does not distort the figure. Reports weight bytes streamed per CPU-second (decode, T = 1) and
// multiply-accumulates per CPU-second (prompt, T > 1), single thread.
//   small matrix (fits L2): the kernel's compute ceiling; large (256 MiB+, beyond the VM's
//   effective cache): with memory traffic, as in a real decode step.
// Usage: cpu_matmul_bench [T (default 1)] [rows (default 1024)] [cols (default 2048)]
//                         [threads (default 1)] [formats, comma separated (default all)]
//        ROCFORGE_CPU=avx2|scalar lowers the ISA level; ROCFORGE_BENCH_HUGE=1 puts the weights on
//        transparent huge pages; ROCFORGE_BENCH_COPIES=N cycles through N copies of the matrix
//        (decode-sized matrices that still stream from DRAM, as in a real decode step).
// With threads > 1 the figures are per wall-clock second of the whole pool (all threads), since
// the point is then the machine's combined throughput.
#include <sys/mman.h>
#include <time.h>

#include <cstdio>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "rocforge/quant.h"

using namespace rocforge;

// Weight buffer; with huge = true backed by 2 MiB pages where the kernel grants them
// (MADV_HUGEPAGE), to see what the TLB costs a decode that streams hundreds of MiB.
struct HugeBuffer {
  uint8_t* p = nullptr;
  size_t n = 0;
  HugeBuffer(size_t bytes, bool huge) : n(bytes) {
    const size_t align = size_t(2) << 20;
    p = static_cast<uint8_t*>(std::aligned_alloc(align, (bytes + align - 1) / align * align));
    if (!p) std::abort();
    if (huge) madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
  }
  ~HugeBuffer() { std::free(p); }
  uint8_t* data() { return p; }
  size_t size() const { return n; }
};

static double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 1;
  const int64_t rows = argc > 2 ? std::atoll(argv[2]) : 1024;
  const int64_t cols = argc > 3 ? std::atoll(argv[3]) : 2048;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
  const bool huge = std::getenv("ROCFORGE_BENCH_HUGE") != nullptr;  // weights on 2 MiB pages
  const int64_t copies = std::getenv("ROCFORGE_BENCH_COPIES") ? std::max(1, std::atoi(std::getenv("ROCFORGE_BENCH_COPIES"))) : 1;
  std::string only;  // ",q4_0,q8_0," or empty (all formats)
  if (argc > 5) only.append(",").append(argv[5]).append(",");
  std::printf("cpu: %s\nkernels: %s, %d thread(s), W[%lld x %lld], T = %lld\n\n", cpu::cpu_model_name().c_str(),
              cpu::isa_name(cpu::active_isa()), threads, (long long)rows, (long long)cols, (long long)T);
  std::printf("| format | weight MiB | ms / call (%s) | weight GB/s | GMAC/s |\n|---|---:|---:|---:|---:|\n",
              threads > 1 ? "wall" : "CPU");
  const GgmlType types[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                            GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                            GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::F16, GgmlType::BF16,
                            GgmlType::F32};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(T * cols), y(T * rows), row(cols);
  for (auto& v : x) v = nd(rng);
  cpu::ThreadPool pool(threads);
  auto now = [&] {
    if (threads == 1) return thread_seconds();
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  for (GgmlType t : types) {
    std::string key(",");
    key.append(ggml_type_name(t)).append(",");
    if (!only.empty() && only.find(key) == std::string::npos) continue;
    const size_t rb = quant::row_bytes(t, cols);
    // `copies` separate matrices called in turn (ROCFORGE_BENCH_COPIES): with a model-sized total,
    // every call streams from DRAM as in a decode step, whatever the single matrix's size.
    HugeBuffer w(rb * rows * copies, huge);
    // At most 4096 distinct random rows, repeated: large matrices exist to measure memory traffic,
    // and quantizing hundreds of MiB of random floats would take longer than the measurement.
    const int64_t distinct = rows < 4096 ? rows : 4096;
    for (int64_t r = 0; r < distinct; ++r) {
      for (auto& v : row) v = nd(rng);
      quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
    }
    for (int64_t r = distinct; r < rows * copies; ++r)
      std::memcpy(w.data() + r * rb, w.data() + (r % distinct) * rb, rb);
    auto call = [&](int64_t i) {
      const cpu::QMatrix m{w.data() + (i % copies) * rows * rb, t, cols, rows, rb};
      cpu::matmul(m, x.data(), T, y.data(), pool);
    };
    call(0);  // warm-up
    int iters = 0;
    const double t0 = now();
    double el = 0;
    while (el < 0.3 || iters < 3 * copies) {
      call(iters + 1);
      ++iters;
      el = now() - t0;
    }
    const double per = el / iters;
    const double bytes = static_cast<double>(rb) * rows;  // one call
    std::printf("| %s | %.2f | %.3f | %.1f | %.1f |\n", std::string(ggml_type_name(t)).c_str(), bytes / 1048576.0,
                per * 1e3, bytes / per / 1e9, double(rows) * cols * T / per / 1e9);
  }

  // AMX against the AVX-512 level on the same shapes (prompt-sized T): one thread, CPU time, each
  // format timed with AMX on then off. AMX on: the AMX-INT8 panel GEMM, or the AMX-BF16 GEMM for
  // F16/BF16 and Q6_K where the CPU has AMX-BF16; off: the VNNI panel GEMM, or the f32 FMA tiles for
  // F16/BF16. Only where AMX runs; ROCFORGE_AMX=0 turns it off for the whole run.
  if (cpu::amx_enabled() && T >= cpu::kPanelMinTokens) {
    std::printf("\nprompt GEMM, AMX (INT8; BF16 for f16/bf16/q6_k) vs AVX-512 (VNNI panel; FMA for f16/bf16): 1 thread, W[%lld x %lld], T = %lld\n\n", (long long)rows,
                (long long)cols, (long long)T);
    std::printf("| format | AMX GMAC/s | VNNI GMAC/s | AMX / VNNI |\n|---|---:|---:|---:|\n");
    const GgmlType panel_types[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,   GgmlType::Q5_1,
                                    GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,   GgmlType::Q4_K,
                                    GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                                    GgmlType::MXFP4,  GgmlType::F16,  GgmlType::BF16};  // F16/BF16: AMX-BF16 vs f32 FMA tiles
    cpu::ThreadPool one(1);
    std::vector<float> yv(T * rows);
    for (GgmlType t : panel_types) {
      const size_t rb = quant::row_bytes(t, cols);
      std::vector<uint8_t> w(rb * rows);
      const int64_t distinct = rows < 1024 ? rows : 1024;  // repeated rows: quantizing is slow
      for (int64_t r = 0; r < rows; ++r) {
        if (r < distinct) {
          for (auto& v : row) v = nd(rng);
          quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
        } else {
          for (size_t i = 0; i < rb; ++i) w[r * rb + i] = w[(r % distinct) * rb + i];
        }
      }
      cpu::QMatrix m{w.data(), t, cols, rows, rb};
      double gmac[2];
      for (int k = 0; k < 2; ++k) {
        cpu::set_amx_enabled(k == 0);
        cpu::matmul(m, x.data(), T, yv.data(), one);  // warm-up
        int iters = 0;
        const double t0 = thread_seconds();
        double el = 0;
        while (el < 0.3 || iters < 3) {
          cpu::matmul(m, x.data(), T, yv.data(), one);
          ++iters;
          el = thread_seconds() - t0;
        }
        gmac[k] = double(rows) * cols * T * iters / el / 1e9;
      }
      cpu::set_amx_enabled(true);
      std::printf("| %s | %.1f | %.1f | %.2f |\n", std::string(ggml_type_name(t)).c_str(), gmac[0], gmac[1],
                  gmac[0] / gmac[1]);
    }
  }
  return 0;
}
