// penalties.hip - repetition, presence and frequency penalties on the logits where they are, ahead of
// the device sampler: the host Sampler's first stage (penalized_logit in engine/sampler.cpp), rounded
// the same way, so a penalized row samples on the device as it would on the host.
//
// Why on the device: a row with penalties used to send its whole logits row (0.5 MB for a 128K
// vocabulary) to the host and sample there, which is what a server's OpenAI clients sending
// frequency_penalty / presence_penalty got for every token.
//
// A row's counted tokens come in two parts: (id, count) pairs the host counted over the history it
// has, and ids sampled earlier in the same chain of decode steps (still on the device), each adding
// one to its id's count or penalizing an id of its own. Every logit is rewritten by one thread only:
// the pairs hold distinct ids (by increasing id), and a chain id is handled by its first occurrence,
// only where no pair has it.
#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 256;

// The host's arithmetic: one division or product, then the fused multiply-add subtracted (explicit
// roundings: no contraction may merge them differently here and there).
__device__ inline float penalized(float l, const rf_penalty_row& p, int count) {
  if (p.repeat != 1.f) l = l > 0.f ? __fdiv_rn(l, p.repeat) : __fmul_rn(l, p.repeat);
  return __fsub_rn(l, fmaf(p.frequency, static_cast<float>(count), p.presence));
}

// One block a row; the pairs and chain ids spread over its threads.
__global__ void __launch_bounds__(kThreads) penalize_kernel(float* logits, int n_vocab,
                                                            const rf_penalty_row* __restrict__ rows,
                                                            const int32_t* __restrict__ pairs,
                                                            const int32_t* __restrict__ chain) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const rf_penalty_row p = rows[blockIdx.x];
  float* l = logits + static_cast<size_t>(blockIdx.x) * n_vocab;
  const int32_t* pr = pairs + 2 * static_cast<size_t>(p.begin);
  const int cb = chain ? p.chain_begin : 0, ce = chain ? p.chain_end : 0;
  auto chain_count = [&](int32_t id) {
    int c = 0;
    for (int j = cb; j < ce; ++j) c += chain[j] == id;
    return c;
  };
  for (int i = threadIdx.x; i < p.count; i += kThreads) {
    const int32_t id = pr[2 * i];
    if (id < 0 || id >= n_vocab) continue;
    l[id] = penalized(l[id], p, pr[2 * i + 1] + chain_count(id));
  }
  for (int j = cb + static_cast<int>(threadIdx.x); j < ce; j += kThreads) {
    const int32_t id = chain[j];
    if (id < 0 || id >= n_vocab) continue;
    bool first = true;
    for (int q = cb; q < j && first; ++q) first = chain[q] != id;
    if (!first) continue;
    // The pairs come by increasing id: a binary search (a scan of a whole-history window's hundreds
    // of pairs, one dependent load each, cost ~2% of a 1B decode step).
    int lo = 0, hi = p.count;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (pr[2 * mid] < id) lo = mid + 1;
      else hi = mid;
    }
    if (lo < p.count && pr[2 * lo] == id) continue;
    l[id] = penalized(l[id], p, chain_count(id));
  }
}

}  // namespace

int penalize_rows(float* logits, int n_vocab, int n_rows, const rf_penalty_row* rows, const int32_t* pairs,
                  const int32_t* chain, hipStream_t s) {
  if (n_rows < 0 || n_rows > 65535) return fail("penalize_rows: row count %d out of range 0..65535", n_rows);
  if (n_vocab <= 0) return fail("penalize_rows: empty vocabulary");
  if (!logits || !rows || !pairs) return fail("penalize_rows: missing buffer");
  if (n_rows == 0) return 0;
  (void)rf_launch(penalize_kernel, dim3(static_cast<unsigned>(n_rows)), kThreads, 0, s, logits, n_vocab, rows, pairs,
                  chain);
  return check(hipGetLastError(), "penalize_rows");
}

}  // namespace rocforge::gpu
