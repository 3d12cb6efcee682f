// attention.h - one (token, kv head) unit of causal attention over the paged KV cache.
//
// The `group` query heads that share a kv head (GQA) are processed together, so every cached K/V
// row is read (and converted from f16, or dequantized from Q8_0) once for all of them, straight
// from the cache: no K/V copy.
// Online softmax (flash-style): positions are taken in blocks; each block's scores update a running
// max and denominator, rescaling the accumulator, so no [n_pos] score row is ever materialised
// beyond one block.
#pragma once

#include <cstdint>

#include "rocforge/kv_type.h"

namespace rocforge::cpu {

// This kv head's first value in the cache row of `slot`: rows of row_elems values of type t, the
// head starting at value head_off (a multiple of 32 for Q8_0, so it starts on a block).
inline const uint8_t* kv_head_row(const void* base, KvType t, int64_t row_elems, int64_t head_off, int64_t slot) {
  return static_cast<const uint8_t*>(base) + static_cast<uint64_t>(slot) * kv_row_bytes(t, row_elems) +
         kv_row_bytes(t, head_off);
}

struct AttnArgs {
  const float* q = nullptr;       // [group, D] query heads of one token sharing one kv head
  int group = 1;
  int D = 0;                      // head dim
  float scale = 1.0f;             // 1/sqrt(D)
  int64_t n_pos = 0;              // attend to cache positions 0..n_pos-1
  const int64_t* slots = nullptr; // [n_pos] cache row of each position
  const void* k = nullptr;        // cache base: rows of row_elems values of kv_type
  const void* v = nullptr;
  int64_t row_elems = 0;          // elements per cache row (kv_dim)
  int64_t head_off = 0;           // this kv head's first element in a row (kvh * D)
  KvType kv_type = KvType::F16;   // f32, f16 (uint16 bits) or Q8_0 blocks (D a multiple of 32)
  float* out = nullptr;           // [group, D]
  float* scratch = nullptr;       // attend_scratch_floats(group, D) floats
};

constexpr int kAttnBlock = 32;  // positions per online-softmax block
inline int64_t attend_scratch_floats(int group, int D) {
  return static_cast<int64_t>(group) * D + 2 * group + static_cast<int64_t>(group) * kAttnBlock + 2 * D;
}

// Several query tokens of one sequence against one kv head (a prompt, or one decode token): the
// same result per token as attend(), computed as tiles of (n_tok x group) query rows x 16 cached
// positions, so each K/V block is read and converted once for every query row of the tile, scores
// come from FMAs across 16 positions at a time (no horizontal sum per position) and the softmax
// runs on vectors.
// Causal per token: token i attends to positions 0 .. n_pos[i] - 1.
struct AttnTileArgs {
  const float* q = nullptr;       // token i's [group, D] query heads at q + i * q_stride
  int64_t q_stride = 0;
  int n_tok = 1;
  const int64_t* n_pos = nullptr; // [n_tok]
  int group = 1;
  int D = 0;
  float scale = 1.0f;
  const int64_t* slots = nullptr; // cache row of every position up to max(n_pos)
  const void* k = nullptr;        // as AttnArgs
  const void* v = nullptr;
  int64_t row_elems = 0;
  int64_t head_off = 0;
  KvType kv_type = KvType::F16;
  float* out = nullptr;           // token i's [group, D] output at out + i * out_stride
  int64_t out_stride = 0;
};
constexpr int kAttnTileBlock = 16;  // cached positions per tile step
// A single token (a decode step) goes through the tile kernel too from this many positions on. The
// gain is not K/V conversion (attend() also converts each row once per group) but scores taken 16
// positions per FMA with no horizontal sum per position, and exp on vectors instead of expf per
// score. Below it the tile kernel's whole-block transpose and masked softmax cost more than they
// save: `cpu_attention_bench decode` put the crossover at 4-8 positions (f16 and Q8_0 caches,
// groups 1-8, D 64 and 128, AVX-512 and AVX2; docs/perf/cpu.md), group 1 breaking even at 8.
constexpr int64_t kDecodeTileMinPos = 8;
inline int64_t attend_tile_scratch_floats(int n_tok, int group, int D) {
  const int64_t R = static_cast<int64_t>(n_tok) * group;
  return R * D + 2 * R + R * kAttnTileBlock + 2 * static_cast<int64_t>(D) * kAttnTileBlock + 16 +
         attend_scratch_floats(group, D);
}

// Runs with the active ISA's kernel.
void attend(const AttnArgs& a);
// The tiled kernel where the active ISA has one (AVX-512 or AVX2, D = 32, 64 or 128), else attend()
// per token. A single token (decode) takes the tiled kernel from kDecodeTileMinPos positions on,
// where it is faster, and attend() below that. scratch: attend_tile_scratch_floats(n_tok, group, D) floats.
void attend_tile(const AttnTileArgs& a, float* scratch);
// The portable version (the reference the SIMD kernels are tested against).
void attend_scalar(const AttnArgs& a);

}  // namespace rocforge::cpu
