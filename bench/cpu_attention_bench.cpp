// cpu_attention_bench - single-thread CPU time of one layer's prompt attention and swiglu at the
// active ISA level (ROCFORGE_CPU lowers it), each against the path it replaces (or, with
// `decode`, one decode token's attention):
//   attention: attend_tile (tiles of up to 8 tokens, as cpu_forward.cpp) vs attend() per token
//   swiglu:    swiglu (dispatched) vs swiglu_scalar
// Shape of a Llama 3.2 1B layer by default: D = 64, 32 query / 8 kv heads, f16 K/V cache.
// Usage: cpu_attention_bench [T=512] [D=64] [group=4] [n_kv=8] [F=8192] [reps=3] [kv=f16|f32|q8_0]
// Prints the best of `reps` for each (CPU time of this thread).
//   cpu_attention_bench decode [D=64] [group=4] [n_kv=8] [reps=5] [kv=f16|f32|q8_0]
// One decode token (all kv heads) over 1 .. 8192 cached positions: the per-token kernel (attend),
// the ISA's tile kernel called directly with one token, and attend_tile's dispatch (what a decode
// step runs), to place attend_tile's single-token threshold.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "core/half.h"
#include "cpu/attention.h"
#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kv_q8.h"
#include "cpu/ops.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

template <class F>
double best_of(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = cpu_seconds();
    f();
    best = std::min(best, cpu_seconds() - t0);
  }
  return best;
}

// K/V cache of n rows of row values of type kv, from N(0, 1) values.
void fill_cache(rocforge::KvType kv, int64_t n, int64_t row, std::mt19937& rng, std::vector<uint8_t>& out) {
  using namespace rocforge;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t rb = kv_row_bytes(kv, row);
  out.resize(n * rb);
  std::vector<float> x(row);
  for (int64_t t = 0; t < n; ++t) {
    for (auto& e : x) e = nd(rng);
    uint8_t* dst = out.data() + t * rb;
    if (kv == KvType::Q8_0) cpu::quantize_kv_row_q8_0(x.data(), row, dst);
    else if (kv == KvType::F32) std::memcpy(dst, x.data(), rb);
    else
      for (int64_t i = 0; i < row; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
  }
}

// One kv head's query heads (group x D at q + kvh * group * D, rows qd apart) over the cache: the
// fields every call of this bench shares; the caller sets the tokens (q, n_tok, n_pos, out offsets).
rocforge::cpu::AttnTileArgs head_args(const std::vector<float>& q, std::vector<float>& out, int64_t qd, int group,
                                      int D, int kvh, const std::vector<int64_t>& slots, const std::vector<uint8_t>& k,
                                      const std::vector<uint8_t>& v, int64_t row, rocforge::KvType kv) {
  rocforge::cpu::AttnTileArgs a;
  a.q = q.data() + kvh * group * D;
  a.q_stride = qd;
  a.group = group;
  a.D = D;
  a.scale = 0.125f;
  a.slots = slots.data();
  a.k = k.data();
  a.v = v.data();
  a.row_elems = row;
  a.head_off = kvh * D;
  a.kv_type = kv;
  a.out = out.data() + kvh * group * D;
  a.out_stride = qd;
  return a;
}

int decode_bench(int argc, char** argv) {
  using namespace rocforge;
  using namespace rocforge::cpu;
  const int D = argc > 2 ? std::atoi(argv[2]) : 64;
  const int group = argc > 3 ? std::atoi(argv[3]) : 4;
  const int n_kv = argc > 4 ? std::atoi(argv[4]) : 8;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 5;
  const KvType kv = argc > 6 ? parse_kv_type(argv[6]) : KvType::F16;
  if (D < 1 || group < 1 || n_kv < 1 || reps < 1) {
    std::fprintf(stderr, "usage: cpu_attention_bench decode [D] [group] [n_kv] [reps] [kv] (all >= 1)\n");
    return 2;
  }
  const IsaLevel isa = active_isa();
  std::printf("decode: isa %s, D=%d group=%d n_kv=%d, %s cache, best of %d, 1 thread CPU time, GMAC/s\n", isa_name(isa),
              D, group, n_kv, kv_type_name(kv), reps);
  std::printf("%6s %12s %12s %12s\n", "n_pos", "per-token", "tile kernel", "attend_tile");
  constexpr int kMaxPos = 8192;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t qd = static_cast<int64_t>(n_kv) * group * D, row = static_cast<int64_t>(n_kv) * D;
  std::vector<float> q(qd), out(qd);
  for (auto& x : q) x = nd(rng);
  std::vector<uint8_t> k, v;
  fill_cache(kv, kMaxPos, row, rng, k);
  fill_cache(kv, kMaxPos, row, rng, v);
  std::vector<int64_t> slots(kMaxPos);
  for (int j = 0; j < kMaxPos; ++j) slots[j] = (static_cast<int64_t>(j) * 37 + 5) % kMaxPos;  // paged
  std::vector<float> scratch(attend_tile_scratch_floats(1, group, D));
  const auto tile_fn = isa == IsaLevel::Avx512 ? avx512_attend_tile : isa == IsaLevel::Avx2 ? avx2_attend_tile : nullptr;
  for (int64_t n_pos = 1; n_pos <= kMaxPos; n_pos *= 2) {
    // Enough calls per sample (~8M multiply-adds) that short contexts are not timer noise.
    const double macs = 2.0 * n_pos * n_kv * group * D;
    const int calls = static_cast<int>(std::max<double>(1, 8e6 / macs));
    auto run = [&](int mode) {  // 0 per-token attend, 1 the tile kernel directly, 2 attend_tile
      for (int c = 0; c < calls; ++c)
        for (int kvh = 0; kvh < n_kv; ++kvh) {
          AttnTileArgs a = head_args(q, out, qd, group, D, kvh, slots, k, v, row, kv);
          a.n_pos = &n_pos;
          if (mode == 2) {
            attend_tile(a, scratch.data());
          } else if (mode == 1 && tile_fn && tile_fn(a, scratch.data())) {
          } else {
            AttnArgs t;
            t.q = a.q, t.group = group, t.D = D, t.scale = a.scale, t.n_pos = n_pos, t.slots = a.slots;
            t.k = a.k, t.v = a.v, t.row_elems = row, t.head_off = a.head_off, t.kv_type = kv, t.out = a.out;
            t.scratch = scratch.data();
            attend(t);
          }
        }
    };
    double g[3];
    for (int mode = 0; mode < 3; ++mode) g[mode] = macs * calls / best_of(reps, [&] { run(mode); }) * 1e-9;
    std::printf("%6lld %12.2f %12.2f %12.2f\n", static_cast<long long>(n_pos), g[0], g[1], g[2]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rocforge;
  using namespace rocforge::cpu;
  if (argc > 1 && std::strcmp(argv[1], "decode") == 0) return decode_bench(argc, argv);
  const int T = argc > 1 ? std::atoi(argv[1]) : 512;
  const int D = argc > 2 ? std::atoi(argv[2]) : 64;
  const int group = argc > 3 ? std::atoi(argv[3]) : 4;
  const int n_kv = argc > 4 ? std::atoi(argv[4]) : 8;
  const int64_t F = argc > 5 ? std::atoll(argv[5]) : 8192;
  const int reps = argc > 6 ? std::atoi(argv[6]) : 3;
  const KvType kv = argc > 7 ? parse_kv_type(argv[7]) : KvType::F16;
  if (T < 1 || D < 1 || group < 1 || n_kv < 1 || F < 1 || reps < 1) {
    std::fprintf(stderr, "usage: cpu_attention_bench [T] [D] [group] [n_kv] [F] [reps] (all >= 1)\n");
    return 2;
  }
  std::printf("isa %s, T=%d D=%d group=%d n_kv=%d F=%lld, %s cache, best of %d, 1 thread CPU time\n",
              isa_name(active_isa()), T, D, group, n_kv, static_cast<long long>(F), kv_type_name(kv), reps);

  // Inputs: q/out [T][n_kv * group * D], K/V cache [T][n_kv * D] of type kv in scattered slots.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t qd = static_cast<int64_t>(n_kv) * group * D, row = static_cast<int64_t>(n_kv) * D;
  std::vector<float> q(T * qd), out(T * qd);
  for (auto& x : q) x = nd(rng);
  std::vector<uint8_t> k, v;
  fill_cache(kv, T, row, rng, k);
  fill_cache(kv, T, row, rng, v);
  std::vector<int64_t> slots(T), n_pos(T);
  for (int j = 0; j < T; ++j) slots[j] = (j * 37 + 5) % T, n_pos[j] = j + 1;
  if (T % 37 == 0) for (int j = 0; j < T; ++j) slots[j] = j;  // keep slots a permutation

  const int tile = std::max(1, 32 / group);
  std::vector<float> scratch(attend_tile_scratch_floats(tile, group, D));
  auto run_layer = [&](bool tiled) {
    for (int kvh = 0; kvh < n_kv; ++kvh)
      for (int t0 = 0; t0 < T; t0 += tile) {
        AttnTileArgs a = head_args(q, out, qd, group, D, kvh, slots, k, v, row, kv);
        a.q += t0 * qd;
        a.out += t0 * qd;
        a.n_tok = std::min(tile, T - t0);
        a.n_pos = n_pos.data() + t0;
        if (tiled) {
          attend_tile(a, scratch.data());
        } else {
          // attend() itself: attend_tile with one token may take the tile kernel (long contexts).
          for (int i = 0; i < std::min(tile, T - t0); ++i) {
            AttnArgs t;
            t.q = q.data() + (t0 + i) * qd + kvh * group * D, t.group = group, t.D = D, t.scale = a.scale;
            t.n_pos = n_pos[t0 + i], t.slots = a.slots, t.k = a.k, t.v = a.v, t.row_elems = row;
            t.head_off = a.head_off, t.kv_type = kv, t.out = out.data() + (t0 + i) * qd + kvh * group * D;
            t.scratch = scratch.data();
            attend(t);
          }
        }
      }
  };
  // Multiply-adds: QK and PV, each sum over tokens of n_pos x heads x D.
  const double macs = 2.0 * (static_cast<double>(T) * (T + 1) / 2) * n_kv * group * D;
  const double per_tok = best_of(reps, [&] { run_layer(false); });
  const double tiled = best_of(reps, [&] { run_layer(true); });
  std::printf("attention per token: %8.2f ms  %6.2f GMAC/s\n", per_tok * 1e3, macs / per_tok * 1e-9);
  std::printf("attention tiled:     %8.2f ms  %6.2f GMAC/s  (x%.2f)\n", tiled * 1e3, macs / tiled * 1e-9, per_tok / tiled);

  std::vector<float> g(T * F), u(T * F), work(T * F);
  for (auto& x : g) x = nd(rng) * 3.0f;
  for (auto& x : u) x = nd(rng);
  const double sc = best_of(reps, [&] { work = g; swiglu_scalar(work.data(), u.data(), T * F); });
  const double vec = best_of(reps, [&] { work = g; swiglu(work.data(), u.data(), T * F); });
  std::printf("swiglu scalar:       %8.2f ms (incl. copy)\n", sc * 1e3);
  std::printf("swiglu %-13s %8.2f ms (incl. copy)  (x%.2f)\n", isa_name(active_isa()), vec * 1e3, sc / vec);
  return 0;
}
