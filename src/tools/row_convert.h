// row_convert.h - produce a tensor of any type, chunk by chunk, from rows of float32.
//
// Both quantize (rows dequantized from the source file) and synth (rows of random numbers) fill
// float32 rows and quantize them. Doing it in bounded chunks keeps memory at one chunk of float32
// plus the output tensor, whatever the model size.
#pragma once

#include <cstdint>
#include <functional>

#include "rocforge/ggml_type.h"

namespace rocforge::tools {

// Fills rows [r0, r1) of float32 into dst (row r0 first, n_per_row floats each). Called from
// several threads at once for disjoint ranges, so it must not share mutable state.
using RowFill = std::function<void(float* dst, int64_t r0, int64_t r1)>;

// Writes nrows rows of `type` into dst (exactly quant::row_bytes(type, n_per_row) * nrows bytes):
// each chunk of rows is filled by `fill` on `threads` threads, then quantized by
// quant::quantize_rows on the same number of threads.
void convert_rows(GgmlType type, uint8_t* dst, int64_t nrows, int64_t n_per_row, int threads, const RowFill& fill);

// Runs fn(r0, r1) over [0, n) split into `threads` contiguous ranges (one thread: inline).
void parallel_ranges(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace rocforge::tools
