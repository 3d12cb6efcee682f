// gaussian.h - fast deterministic normal numbers for synthetic weights.
//
// Each row of each tensor has its own stream, keyed by (seed, tensor name, row), so the values do
// not depend on the number of threads or on the order tensors are generated in.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace rocforge::tools {

// SplitMix64 step: a well-mixed 64-bit output per call (Steele, Lea & Flood, 2014).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// FNV-1a of a name, to key a tensor's streams.
inline uint64_t name_hash(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// Fills dst[0..n) with N(0, sigma^2) by Box-Muller on two 24-bit uniforms per 64-bit draw.
inline void fill_gaussian(float* dst, int64_t n, float sigma, uint64_t seed, uint64_t tensor_key, int64_t row) {
  uint64_t state = seed ^ tensor_key ^ (static_cast<uint64_t>(row) * 0xD1B54A32D192ED03ull);
  splitmix64(state);
  constexpr float kInv24 = 1.0f / 16777216.0f;
  constexpr float kTwoPi = 6.2831853071795865f;
  int64_t i = 0;
  while (i < n) {
    const uint64_t r = splitmix64(state);
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * kInv24;  // (0, 1]: log is finite
    const float u2 = static_cast<float>((r >> 16) & 0xFFFFFF) * kInv24;
    const float mag = sigma * std::sqrt(-2.0f * std::log(u1));
    dst[i++] = mag * std::cos(kTwoPi * u2);
    if (i < n) dst[i++] = mag * std::sin(kTwoPi * u2);
  }
}

}  // namespace rocforge::tools
