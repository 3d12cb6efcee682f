// row_convert.cpp - chunked fill + quantize (see row_convert.h).
#include "tools/row_convert.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "rocforge/quant.h"

namespace rocforge::tools {

void parallel_ranges(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t nt = std::clamp<int64_t>(threads, 1, std::max<int64_t>(1, n));
  if (nt == 1) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex mu;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t r0 = n * t / nt, r1 = n * (t + 1) / nt;
    pool.emplace_back([&, r0, r1] {
      try {
        fn(r0, r1);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

void convert_rows(GgmlType type, uint8_t* dst, int64_t nrows, int64_t n_per_row, int threads, const RowFill& fill) {
  const size_t row_bytes = quant::row_bytes(type, n_per_row);
  // ~16M floats (64 MiB) per chunk: large enough for every thread to have many rows, small enough
  // that an 8B model's embedding table (525M floats) is never held in float32 at once.
  constexpr int64_t kChunkFloats = int64_t{1} << 24;
  const int64_t chunk_rows = std::clamp<int64_t>(kChunkFloats / std::max<int64_t>(1, n_per_row), 1, nrows);
  std::vector<float> buf(static_cast<size_t>(chunk_rows * n_per_row));
  for (int64_t r0 = 0; r0 < nrows; r0 += chunk_rows) {
    const int64_t r1 = std::min(nrows, r0 + chunk_rows);
    parallel_ranges(r1 - r0, threads, [&](int64_t a, int64_t b) { fill(buf.data() + a * n_per_row, r0 + a, r0 + b); });
    quant::quantize_rows(type, buf.data(), dst + static_cast<size_t>(r0) * row_bytes, r1 - r0, n_per_row, threads);
  }
}

}  // namespace rocforge::tools
