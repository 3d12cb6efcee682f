// cpu_read_bw - streaming read bandwidth of this machine's memory, the bound of CPU decode (every
// weight byte is read once per token).
//
//   cpu_read_bw [THREADS=2] [MIB=2048] [STREAMS=6] [huge]
//
// Each thread sums its share of a buffer far larger than the last-level cache, walking STREAMS
// consecutive slices at once (as the decode GEMVs walk their rows: kernels_x86.inc gemv_streams);
// `huge` asks for transparent huge pages (the CPU executor's weight copy uses them). Prints every
// pass and the best. A buffer that fits in cache (e.g. 64 MiB) reads several times faster: that is
// cache, not memory.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

// Sums `streams` slices of `words` 64-bit words each, one 64-byte line of every slice per step.
template <int Dummy>
uint64_t sum_streams(const uint64_t* base, size_t words, int streams) {
  uint64_t acc[8] = {};
  for (size_t i = 0; i < words; i += 8)
    for (int s = 0; s < streams; ++s)
      for (int k = 0; k < 8; ++k) acc[k] += base[s * words + i + k];
  uint64_t total = 0;
  for (uint64_t a : acc) total += a;
  return total;
}
#if defined(__x86_64__)
// The same loop with 64- or 32-byte vectors where the CPU has them: 16-byte SSE2 loads (the
// baseline build) read ~15% slower on the dev VM, and the point is the memory, not the loads.
__attribute__((target("avx2"))) uint64_t sum_streams_avx2(const uint64_t* base, size_t words, int streams) {
  return sum_streams<1>(base, words, streams);
}
__attribute__((target("avx512f,prefer-vector-width=512"))) uint64_t sum_streams_avx512(const uint64_t* base,
                                                                                        size_t words, int streams) {
  return sum_streams<2>(base, words, streams);
}
#endif
uint64_t sum(const uint64_t* base, size_t words, int streams) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return sum_streams_avx512(base, words, streams);
  if (__builtin_cpu_supports("avx2")) return sum_streams_avx2(base, words, streams);
#endif
  return sum_streams<0>(base, words, streams);
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const size_t bytes = (argc > 2 ? std::max<size_t>(64, std::strtoull(argv[2], nullptr, 10)) : 2048) << 20;
  const int streams = argc > 3 ? std::max(1, std::atoi(argv[3])) : 6;
  const bool huge = argc > 4 && std::strcmp(argv[4], "huge") == 0;
  auto* buf = static_cast<uint64_t*>(std::aligned_alloc(2 << 20, bytes));
  if (!buf) {
    std::fprintf(stderr, "cpu_read_bw: cannot allocate %zu MiB\n", bytes >> 20);
    return 1;
  }
  if (huge) madvise(buf, bytes, MADV_HUGEPAGE);
  std::memset(buf, 1, bytes);
  const size_t words = bytes / 8 / threads / streams / 64 * 64;  // per stream, a multiple of 8 lines
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<uint64_t> sums(threads);
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        sums[t] = sum(buf + static_cast<size_t>(t) * streams * words, words, streams);
      });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = static_cast<double>(words) * 8 * streams * threads / s / 1e9;
    best = std::max(best, gbs);
    std::printf("pass %d: %.1f GB/s (checksum %llu)\n", pass, gbs, static_cast<unsigned long long>(sums[0]));
  }
  std::printf("best: %.1f GB/s read, %d threads, %zu MiB, %d streams per thread%s\n", best, threads, bytes >> 20,
              streams, huge ? ", huge pages" : "");
  std::free(buf);
  return 0;
}
