// quant_fmt_kquants.h - device decoders of the 256-element super-block formats: Q2_K, Q3_K, Q4_K,
// Q5_K, Q6_K (Q3_K and Q6_K also as group-of-8 planes), IQ4_XS. Conventions: quant_fmt_common.h.
#pragma once

#include "gpu/quant_fmt_common.h"

namespace rocforge::gpu {

// Q2_K {u8 scales[16]; u8 qs[64]; half d, dmin}. Chunk s = 32 elements: half n = s/4 of the block,
// 2-bit plane j = s%4 of qs[32n .. 32n+32); 16-element groups use scales[8n + 2j + (l >= 16)]:
// low nibble scales d, high nibble scales dmin.
template <>
struct Fmt<kQ2_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 84;
  // int8 path: an item is half a super-block (n = item % 2: chunks 4n + j, planes j = 0..3 of
  // qs[32n ..)); lane p takes positions l = 8p .. +8 of all four: 8 qs bytes (2-bit codes 0..3), the
  // 8 scale bytes of the half (its sub-blocks 8n + 2j + p/2) and d, dmin: five 4-byte loads (84-byte
  // blocks are 4-byte aligned) for 32 weights. w = d sc q - dmin m.
  static constexpr int kItemChunks = 4;
  using Xq = XqQuad8;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    load_xq_quad8(xq, xd, item, p, v);
  }
  struct Raw { uint32_t q[2], sc[2], dd; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int n = item & 1;
    const uint8_t* b = row + static_cast<size_t>(item >> 1) * kBlockBytes;
    ld_2w<4>(b + 16 + 32 * n + 8 * p, r.q);
    ld_2w<4>(b + 8 * n, r.sc);
    r.dd = ld_u32(b + 80);
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    float acc_d = 0.f, acc_m = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int a = rf_dp4a(static_cast<int>((r.q[0] >> (2 * j)) & 0x03030303u), v.x[j][0], 0);
      a = rf_dp4a(static_cast<int>((r.q[1] >> (2 * j)) & 0x03030303u), v.x[j][1], a);
      // scale byte 2j + p/2 of the half's 8: word j / 2, byte 2 (j % 2) + p / 2
      const uint32_t sc = (r.sc[j >> 1] >> (8 * (2 * (j & 1) + (p >> 1)))) & 0xffu;
      acc_d = fmaf(v.dx[j], static_cast<float>(static_cast<int>(sc & 15u) * a), acc_d);
      acc_m = fmaf(v.dx[j], static_cast<float>(static_cast<int>(sc >> 4) * v.sx[j]), acc_m);
    }
    return rf_half_to_float(r.dd & 0xffffu) * acc_d - rf_half_to_float(r.dd >> 16) * acc_m;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7, n = s >> 2, j = s & 3;
    const uint32_t dd = ld_u32(b + 80);
    const float d = rf_half_to_float(dd & 0xffffu), dmin = rf_half_to_float(dd >> 16);
    const uint32_t sc0 = b[8 * n + 2 * j], sc1 = b[8 * n + 2 * j + 1];
    const float d0 = d * (sc0 & 15), m0 = dmin * (sc0 >> 4);
    const float d1 = d * (sc1 & 15), m1 = dmin * (sc1 >> 4);
    uint32_t w[8];
    ld_16<4>(b + 16 + 32 * n, w);
    ld_16<4>(b + 16 + 32 * n + 16, w + 4);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const float q = u2f((byte_of(w, l) >> (2 * j)) & 3);
      v[l] = l < 16 ? fmaf(d0, q, -m0) : fmaf(d1, q, -m1);
    }
  }
};

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d}. Chunk s: n = s/4, plane j = s%4 of
// qs[32n ..); the high bit of element l is bit (4n + j) of hmask[l], and a clear bit subtracts 4.
// 16 6-bit scales (stored +32): low 4 bits in scales[0..7] nibbles, high 2 bits in scales[8..11].
//
// Two layouts of the same bytes (L says where super-block sb's parts are):
//   Q3Plain  - the GGUF blocks back to back. 110-byte blocks are only 2-byte aligned: the int8 path
//              issues 15 loads (16-bit) per lane and item for 30 bytes.
//   Q3Group8 - the GPU upload's layout (kQ3_K_G8, gpu/repack.h): eight super-blocks as planes
//              [hmask 8 x 32][qs 8 x 64][scales[0..8) 8 x 8][scales[8..12) 8 x 4][d 8 x 2] = 880
//              bytes, so the same bytes take 5 loads (8-byte words). Rows of a multiple of 2048 only.
struct Q3Plain {
  static constexpr int kAlign = 2, kLoAlign = 2, kHiAlign = 2;
  __device__ static const uint8_t* hm(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb) * 110; }
  __device__ static const uint8_t* qs(const uint8_t* row, int sb) { return hm(row, sb) + 32; }
  __device__ static const uint8_t* sc_lo(const uint8_t* row, int sb) { return hm(row, sb) + 96; }
  __device__ static const uint8_t* sc_hi(const uint8_t* row, int sb) { return hm(row, sb) + 104; }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return hm(row, sb) + 108; }
};
struct Q3Group8 {
  static constexpr int kAlign = 16, kLoAlign = 8, kHiAlign = 4;  // plane bases / their entries
  // Where each plane starts in a group, and the group's bytes (matmul_mma's staged copy uses them too).
  static constexpr int kHm = 0, kQs = 256, kScLo = 768, kScHi = 832, kD = 864, kBytes = 880;
  __device__ static const uint8_t* grp(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb >> 3) * kBytes; }
  __device__ static const uint8_t* hm(const uint8_t* row, int sb) { return grp(row, sb) + kHm + 32 * (sb & 7); }
  __device__ static const uint8_t* qs(const uint8_t* row, int sb) { return grp(row, sb) + kQs + 64 * (sb & 7); }
  __device__ static const uint8_t* sc_lo(const uint8_t* row, int sb) { return grp(row, sb) + kScLo + 8 * (sb & 7); }
  __device__ static const uint8_t* sc_hi(const uint8_t* row, int sb) { return grp(row, sb) + kScHi + 4 * (sb & 7); }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return grp(row, sb) + kD + 2 * (sb & 7); }
};

// One super-block of Q3Group8 as matmul_mma's staged kernel gathers it into shared memory, in nine
// 16-byte copies: [hmask 32][qs 64] and the 16-byte pieces of the scale and d planes that hold its
// entries - [scales[0..8) of super-blocks 2 (sb / 2) + 0, 1: 16][scales[8..12) of 4 (sb / 4) + 0..3:
// 16][d of all 8: 16] = 144 bytes; sb is the super-block's place in its group (the reader passes
// chunk indices 8 sb + 0..7).
struct Q3Slot {
  static constexpr int kAlign = 16, kLoAlign = 8, kHiAlign = 4;
  __device__ static const uint8_t* hm(const uint8_t* row, int) { return row; }
  __device__ static const uint8_t* qs(const uint8_t* row, int) { return row + 32; }
  __device__ static const uint8_t* sc_lo(const uint8_t* row, int sb) { return row + 96 + 8 * (sb & 1); }
  __device__ static const uint8_t* sc_hi(const uint8_t* row, int sb) { return row + 112 + 4 * (sb & 3); }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return row + 128 + 2 * (sb & 7); }
};

// One word from an address aligned to Align bytes (>= 2).
template <int Align>
__device__ inline uint32_t ld_w(const uint8_t* p) {
  if constexpr (Align >= 4) return ld_u32(p);
  else return ld_u32_a2(p);
}

template <class L>
struct Q3Fmt {
  using Layout = L;
  static constexpr int kBlockElems = 256, kBlockBytes = 110;
  // int8 path: Q2_K's items (half n = item % 2, lane p at positions l = 8p .. +8 of the four planes
  // j), plus the high bits (bits 4n + j of hmask[l]): codes 0..7, the -4 taken off through the sums
  // of x.
  static constexpr int kItemChunks = 4;
  using Xq = XqQuad8;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    load_xq_quad8(xq, xd, item, p, v);
  }
  // q: low bits, h: hmask bytes, sc: the 12 scale bytes, d
  struct Raw { uint32_t q[2], h[2], sc[3]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int n = item & 1, sb = item >> 1;
    ld_2w<L::kAlign>(L::qs(row, sb) + 32 * n + 8 * p, r.q);
    ld_2w<L::kAlign>(L::hm(row, sb) + 8 * p, r.h);
    ld_2w<L::kLoAlign>(L::sc_lo(row, sb), r.sc);
    r.sc[2] = ld_w<L::kHiAlign>(L::sc_hi(row, sb));
    r.d = ld_u16(L::d(row, sb));
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int n = item & 1;
    // The lane's four 6-bit scales (sub-blocks i = 8n + 2j + p/2, j < 4), all at once: low 4 bits are
    // nibble n of scale byte 2j + p/2 (word j / 2, byte 2 (j % 2) + p/2); high 2 bits are bits
    // 2 (i / 4) = 4n + 2 (j / 2) of byte 8 + i % 4 = 8 + 2 (j % 2) + p/2. Packed as bytes
    // [j0, j2, j1, j3] (stored + 32).
    const int sh = 8 * (p >> 1) + 4 * n;
    const uint32_t hs = r.sc[2] >> sh;
    const uint32_t lo4 = ((r.sc[0] >> sh) & 0x000f000fu) | (((r.sc[1] >> sh) & 0x000f000fu) << 8);
    const uint32_t hi2 = (hs & 0x00030003u) | (((hs >> 2) & 0x00030003u) << 8);
    const uint32_t scales = lo4 | (hi2 << 4);
    // The half's high bits at bits 0..3 of each byte (plane j at bit j), shifted once: each plane's
    // bit then reaches bit 2 by a constant shift and one mask (the run-time shift 4n + j per plane
    // and word was an instruction more, in a product bound by instructions).
    const uint32_t hn[2] = {r.h[0] >> (4 * n), r.h[1] >> (4 * n)};
    float acc = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int a = 0;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t hb = j <= 2 ? hn[k] << (2 - j) : hn[k] >> (j - 2);
        const uint32_t q = ((r.q[k] >> (2 * j)) & 0x03030303u) | (hb & 0x04040404u);
        a = rf_dp4a(static_cast<int>(q), v.x[j][k], a);
      }
      const int sc = static_cast<int>((scales >> (8 * ((j >> 1) | ((j & 1) << 1)))) & 0xffu) - 32;
      acc = fmaf(v.dx[j], static_cast<float>(sc * (a - 4 * v.sx[j])), acc);
    }
    return rf_half_to_float(r.d) * acc;
  }
  // 6-bit scale i (0..15) of the super-block whose scale bytes 0..7 are at lo, 8..11 at hi.
  __device__ static int scale(const uint8_t* lo, const uint8_t* hi, int i) {
    const int l4 = i < 8 ? (lo[i] & 15) : (lo[i - 8] >> 4);
    const int h2 = (hi[i & 3] >> (2 * (i >> 2))) & 3;
    return (l4 | (h2 << 4)) - 32;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const int sb = c >> 3, s = c & 7, n = s >> 2, j = s & 3;
    const float d = ld_half(L::d(row, sb));
    const uint8_t *lo = L::sc_lo(row, sb), *hi = L::sc_hi(row, sb);
    const float d0 = d * scale(lo, hi, 8 * n + 2 * j), d1 = d * scale(lo, hi, 8 * n + 2 * j + 1);
    uint32_t q[8], h[8];
    ld_16<L::kAlign>(L::qs(row, sb) + 32 * n, q);
    ld_16<L::kAlign>(L::qs(row, sb) + 32 * n + 16, q + 4);
    ld_16<L::kAlign>(L::hm(row, sb), h);
    ld_16<L::kAlign>(L::hm(row, sb) + 16, h + 4);
    const int hbit = 4 * n + j;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      // q = low 2 bits - 4 when the high bit is clear = (low 2 bits | high bit << 2) - 4
      const uint32_t q4 = ((byte_of(q, l) >> (2 * j)) & 3) | (((byte_of(h, l) >> hbit) & 1) << 2);
      v[l] = (l < 16 ? d0 : d1) * u2f(q4, 4.f);
    }
  }
};
template <>
struct Fmt<kQ3_K> : Q3Fmt<Q3Plain> {};
template <>
struct Fmt<kQ3_K_G8> : Q3Fmt<Q3Group8> {};

// 6-bit scale and min j of the 12 packed bytes of Q4_K / Q5_K.
__device__ inline void k4_scale_min(const uint8_t* q, int j, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K {half d, dmin; u8 scales[12]; u8 qs[128]}. Chunk s: nibble s%2 of qs[32(s/2) ..), scale/min s.
__device__ inline void k4_pair_scale_min(const uint4& hd, int j, int& sc0, int& sc1, int& m0, int& m1);

template <>
struct Fmt<kQ4_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 144;
  // part p of chunk s: nibble s%2 of qs[32(s/2) + 8p .. +8)
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * (s >> 1) + 8 * p);
    const int sh = 4 * (s & 1);
    const uint32_t w0 = (q.x >> sh) & 0x0f0f0f0fu, w1 = (q.y >> sh) & 0x0f0f0f0fu;
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      acc = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], acc);
      acc = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], acc);
    }
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    return rf_half_to_float(dd & 0xffffu) * sc * acc - rf_half_to_float(dd >> 16) * m * xsum;
  }
  // int8 path: an item is 4 chunks = 2 chunk pairs (2J, 2J + 1), each pair sharing qs[32(J%4) .. +32):
  // lane p takes pair J = 2 item + p/2, bytes 16(p%2) .. +16 (one 16-byte load), low nibbles for chunk
  // 2J and high nibbles for chunk 2J + 1.
  static constexpr int kItemChunks = 4;
  // sl, sh: sums of the lane's 16 low / high activations (for the mins), shared by every row.
  struct Xq { uint4 l, h; float dl, dh; int sl, sh; };
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    const int J = 2 * item + (p >> 1), o = 16 * (p & 1);
    v.l = *reinterpret_cast<const uint4*>(xq + 64 * J + o);
    v.h = *reinterpret_cast<const uint4*>(xq + 64 * J + 32 + o);
    v.dl = xd[2 * J];
    v.dh = xd[2 * J + 1];
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    v.sl = v.sh = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v.sl = rf_dp4a(0x01010101, xl[k], v.sl);
      v.sh = rf_dp4a(0x01010101, xh[k], v.sh);
    }
  }
  struct Raw { uint4 q, hd; };  // the lane's 16 qs bytes and its super-block's 16-byte header
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int J = 2 * item + (p >> 1), j = J & 3;
    const uint8_t* b = row + static_cast<size_t>(J >> 2) * kBlockBytes;
    r.q = *reinterpret_cast<const uint4*>(b + 16 + 32 * j + 16 * (p & 1));
    r.hd = *reinterpret_cast<const uint4*>(b);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int j = (2 * item + (p >> 1)) & 3;
    const uint4 q = r.q;
    const uint32_t qw[4] = {q.x, q.y, q.z, q.w};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int al = 0, ah = 0;
    const int sl = v.sl, sh = v.sh;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      al = rf_dp4a(static_cast<int>(qw[k] & 0x0f0f0f0fu), xl[k], al);
      ah = rf_dp4a(static_cast<int>((qw[k] >> 4) & 0x0f0f0f0fu), xh[k], ah);
    }
    // The 16-byte header (d, dmin, 12 scale bytes) as one load; scales 2j and 2j + 1 are adjacent
    // bytes of its words, found by shifts (a runtime index into an array would spill). Against two
    // k4_scale_min calls of byte loads: 8B matvecs 1.89 -> 1.73 ms/token (H200, 2 rows per group).
    const uint4 hd = r.hd;
    const uint32_t dd = hd.x;
    const int shf = 16 * (j & 1);
    const uint32_t a1 = (hd.y >> shf) & 0xffffu, a2 = (hd.z >> shf) & 0xffffu, a3 = (hd.w >> shf) & 0xffffu;
    const uint32_t sc2 = j < 2 ? a1 & 0x3f3fu : (a3 & 0x0f0fu) | ((a1 >> 2) & 0x3030u);
    const uint32_t m2 = j < 2 ? a2 & 0x3f3fu : ((a3 >> 4) & 0x0f0fu) | ((a2 >> 2) & 0x3030u);
    const int scl = static_cast<int>(sc2 & 0xffu), sch = static_cast<int>(sc2 >> 8);
    const int ml = static_cast<int>(m2 & 0xffu), mh = static_cast<int>(m2 >> 8);
    const float sum_q = v.dl * static_cast<float>(scl * al) + v.dh * static_cast<float>(sch * ah);
    const float sum_m = v.dl * static_cast<float>(ml * sl) + v.dh * static_cast<float>(mh * sh);
    return rf_half_to_float(dd & 0xffffu) * sum_q - rf_half_to_float(dd >> 16) * sum_m;
  }
  // dot_raw split in its weight half (prep: once per row and item) and its activation half (dot_prep:
  // per token), for kernels that take one item of a row to several tokens (matvec8q_multi_kernel).
  struct Prep { int lo[4], hi[4]; float dsl, dsh, dml, dmh; };  // nibbles; d x scales, dmin x mins
  __device__ static void prep(const Raw& r, int item, int p, int, Prep& w) {
    const uint32_t qw[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w.lo[k] = static_cast<int>(qw[k] & 0x0f0f0f0fu);
      w.hi[k] = static_cast<int>((qw[k] >> 4) & 0x0f0f0f0fu);
    }
    int scl, sch, ml, mh;
    k4_pair_scale_min(r.hd, (2 * item + (p >> 1)) & 3, scl, sch, ml, mh);
    const float d = rf_half_to_float(r.hd.x & 0xffffu), dmin = rf_half_to_float(r.hd.x >> 16);
    w.dsl = d * static_cast<float>(scl), w.dsh = d * static_cast<float>(sch);
    w.dml = dmin * static_cast<float>(ml), w.dmh = dmin * static_cast<float>(mh);
  }
  __device__ static float dot_prep(const Prep& w, const Xq& v) {
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int al = 0, ah = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      al = rf_dp4a(w.lo[k], xl[k], al);
      ah = rf_dp4a(w.hi[k], xh[k], ah);
    }
    return v.dl * (w.dsl * static_cast<float>(al) - w.dml * static_cast<float>(v.sl)) +
           v.dh * (w.dsh * static_cast<float>(ah) - w.dmh * static_cast<float>(v.sh));
  }
  // Elements 32c + 8p .. +8 (the dot8 part p), for the tensor-core GEMM (matmul_mma.hip).
  __device__ static void dequant8(const uint8_t* row, int c, int p, float v[8]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * (s >> 1) + 8 * p);
    // The header as one 16-byte load (byte loads of the scales made the kernel load-issue bound).
    const uint4 hd = *reinterpret_cast<const uint4*>(b);
    int sc0, sc1, m0, m1;
    k4_pair_scale_min(hd, s >> 1, sc0, sc1, m0, m1);
    const int sc = (s & 1) ? sc1 : sc0, m = (s & 1) ? m1 : m0;
    const float d = rf_half_to_float(hd.x & 0xffffu) * sc, mn = rf_half_to_float(hd.x >> 16) * m;
    const int sh = 4 * (s & 1);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v[k] = fmaf(d, u2f((q.x >> (8 * k + sh)) & 15), -mn);
      v[4 + k] = fmaf(d, u2f((q.y >> (8 * k + sh)) & 15), -mn);
    }
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    const float d = rf_half_to_float(dd & 0xffffu) * sc, mn = rf_half_to_float(dd >> 16) * m;
    uint32_t w[8];
    ld_16<16>(b + 16 + 32 * (s >> 1), w);
    ld_16<16>(b + 16 + 32 * (s >> 1) + 16, w + 4);
    const int shift = 4 * (s & 1);
#pragma unroll
    for (int l = 0; l < 32; ++l) v[l] = fmaf(d, u2f((byte_of(w, l) >> shift) & 15), -mn);
  }
};

// Scales and mins of chunks 2j and 2j + 1 (j < 4) of a Q4_K / Q5_K super-block from its 16-byte
// header hd (d, dmin, 12 packed bytes; k4_scale_min's rules): the two chunks' bytes are adjacent, so
// each comes out of one header word by shifts (a runtime index into an array would spill).
__device__ inline void k4_pair_scale_min(const uint4& hd, int j, int& sc0, int& sc1, int& m0, int& m1) {
  const int shf = 16 * (j & 1);
  const uint32_t a1 = (hd.y >> shf) & 0xffffu, a2 = (hd.z >> shf) & 0xffffu, a3 = (hd.w >> shf) & 0xffffu;
  const uint32_t sc2 = j < 2 ? a1 & 0x3f3fu : (a3 & 0x0f0fu) | ((a1 >> 2) & 0x3030u);
  const uint32_t m2 = j < 2 ? a2 & 0x3f3fu : ((a3 >> 4) & 0x0f0fu) | ((a2 >> 2) & 0x3030u);
  sc0 = static_cast<int>(sc2 & 0xffu);
  sc1 = static_cast<int>(sc2 >> 8);
  m0 = static_cast<int>(m2 & 0xffu);
  m1 = static_cast<int>(m2 >> 8);
}

// Q5_K {half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, 5th bit = bit s of qh[l].
template <>
struct Fmt<kQ5_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 176;
  // int8 path: Q4_K's items (4 chunks = chunk pairs 2J, 2J + 1 sharing qs[32(J%4) .. +32); lane p
  // takes pair J = 2 item + p/2, element positions l = 16(p%2) .. +16) plus the fifth bits: bits 2j
  // (chunk 2J) and 2j + 1 (chunk 2J + 1), j = J % 4, of the same 16 qh[l] bytes. 176-byte blocks keep
  // 16-byte alignment, so a lane's step is three 16-byte loads: qs, qh and the header. Codes are
  // 0..31 (positive int8); the mins use the sums of x, as Q4_K.
  static constexpr int kItemChunks = 4;
  using Xq = Fmt<kQ4_K>::Xq;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    Fmt<kQ4_K>::load_xq(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint4 q, h, hd; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int J = 2 * item + (p >> 1), j = J & 3;
    const uint8_t* b = row + static_cast<size_t>(J >> 2) * kBlockBytes;
    r.q = *reinterpret_cast<const uint4*>(b + 48 + 32 * j + 16 * (p & 1));
    r.h = *reinterpret_cast<const uint4*>(b + 16 + 16 * (p & 1));
    r.hd = *reinterpret_cast<const uint4*>(b);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int j = (2 * item + (p >> 1)) & 3;
    const uint32_t qw[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
    const uint32_t hw[4] = {r.h.x, r.h.y, r.h.z, r.h.w};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int al = 0, ah = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = (qw[k] & 0x0f0f0f0fu) | (((hw[k] >> (2 * j)) & 0x01010101u) << 4);
      const uint32_t hi = ((qw[k] >> 4) & 0x0f0f0f0fu) | (((hw[k] >> (2 * j + 1)) & 0x01010101u) << 4);
      al = rf_dp4a(static_cast<int>(lo), xl[k], al);
      ah = rf_dp4a(static_cast<int>(hi), xh[k], ah);
    }
    int scl, sch, ml, mh;
    k4_pair_scale_min(r.hd, j, scl, sch, ml, mh);
    const float sum_q = v.dl * static_cast<float>(scl * al) + v.dh * static_cast<float>(sch * ah);
    const float sum_m = v.dl * static_cast<float>(ml * v.sl) + v.dh * static_cast<float>(mh * v.sh);
    return rf_half_to_float(r.hd.x & 0xffffu) * sum_q - rf_half_to_float(r.hd.x >> 16) * sum_m;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    const float d = rf_half_to_float(dd & 0xffffu) * sc, mn = rf_half_to_float(dd >> 16) * m;
    uint32_t w[8], h[8];
    ld_16<16>(b + 48 + 32 * (s >> 1), w);
    ld_16<16>(b + 48 + 32 * (s >> 1) + 16, w + 4);
    ld_16<16>(b + 16, h);
    ld_16<16>(b + 32, h + 4);
    const int shift = 4 * (s & 1);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(w, l) >> shift) & 15) | (((byte_of(h, l) >> s) & 1) << 4);
      v[l] = fmaf(d, u2f(q), -mn);
    }
  }
};

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; half d}. Chunk s: n = s/4, g = s%4; low 4 bits are
// nibble g/2 of ql[64n + 32(g%2) + l], high 2 bits are bits 2g of qh[32n + l]; x = d * sc * (q - 32)
// with sc = scales[8n + 2g + l/16].
//
// Two layouts of the same bytes (L says where super-block sb's parts are):
//   Q6Plain  - the GGUF blocks back to back. 210-byte blocks are only 2-byte aligned, so every word
//              costs two 16-bit loads: the int8 path issues 12 loads per 24 weight bytes.
//   Q6Group8 - the GPU upload's layout (kQ6_K_G8, gpu/repack.h): eight super-blocks as planes
//              [ql 8 x 128][qh 8 x 64][scales 8 x 16][d 8 x 2] = 1680 bytes, every plane 16-byte
//              aligned, so the same work takes 3 eight-byte loads. Rows of a multiple of 2048 only.
struct Q6Plain {
  static constexpr int kAlign = 2;
  __device__ static const uint8_t* ql(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb) * 210; }
  __device__ static const uint8_t* qh(const uint8_t* row, int sb) { return ql(row, sb) + 128; }
  __device__ static const uint8_t* sc(const uint8_t* row, int sb) { return ql(row, sb) + 192; }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return ql(row, sb) + 208; }
};
struct Q6Group8 {
  static constexpr int kAlign = 16;  // plane bases; ld_2w offsets within them are multiples of 8
  __device__ static const uint8_t* grp(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb >> 3) * 1680; }
  __device__ static const uint8_t* ql(const uint8_t* row, int sb) { return grp(row, sb) + 128 * (sb & 7); }
  __device__ static const uint8_t* qh(const uint8_t* row, int sb) { return grp(row, sb) + 1024 + 64 * (sb & 7); }
  __device__ static const uint8_t* sc(const uint8_t* row, int sb) { return grp(row, sb) + 1536 + 16 * (sb & 7); }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return grp(row, sb) + 1664 + 2 * (sb & 7); }
};


template <class L>
struct Q6Fmt {
  static constexpr int kBlockElems = 256, kBlockBytes = 210;
  // part p of chunk s = (n, g): low bits from ql[64n + 32(g%2) + 8p ..) nibble g/2, high bits from
  // qh[32n + 8p ..) bits 2g; scale 8n + 2g + p/2.
  // The 6-bit codes (0..63, one per byte) of part p of chunk c as two words, and their scale d * sc.
  __device__ static void codes8(const uint8_t* row, int c, int p, uint32_t& w0, uint32_t& w1, float& d) {
    const int sb = c >> 3, s = c & 7, n = s >> 2, g = s & 3;
    uint32_t lo[2], hi[2];
    ld_2w<L::kAlign>(L::ql(row, sb) + 64 * n + 32 * (g & 1) + 8 * p, lo);
    ld_2w<L::kAlign>(L::qh(row, sb) + 32 * n + 8 * p, hi);
    const int ls = 4 * (g >> 1), hs = 2 * g;
    w0 = ((lo[0] >> ls) & 0x0f0f0f0fu) | (((hi[0] >> hs) & 0x03030303u) << 4);
    w1 = ((lo[1] >> ls) & 0x0f0f0f0fu) | (((hi[1] >> hs) & 0x03030303u) << 4);
    d = ld_half(L::d(row, sb)) * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g + (p >> 1)]);
  }
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    uint32_t w0, w1;
    float d;
    codes8(row, c, p, w0, w1, d);
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      acc = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], acc);
      acc = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], acc);
    }
    return d * (acc - 32.f * xsum);
  }
  // int8 path: an item is half a super-block (n = item % 2: chunks 4n + g, g = 0..3); lane p takes
  // positions l = 8p .. +8 of all four chunks: ql[64n + 8p ..) (g = 0 low, g = 2 high nibbles),
  // ql[64n + 32 + 8p ..) (g = 1, 3) and qh[32n + 8p ..) (2 bits per g).
  static constexpr int kItemChunks = 4;
  // s32[g]: 32 * (sum of the lane's 8 activations of chunk g), the -32 offset, shared by every row.
  struct Xq { int x[4][2]; float dx[4]; int s32[4]; };
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint2 q = *reinterpret_cast<const uint2*>(xq + 32 * (4 * item + g) + 8 * p);
      v.x[g][0] = static_cast<int>(q.x);
      v.x[g][1] = static_cast<int>(q.y);
      v.dx[g] = xd[4 * item + g];
      v.s32[g] = 32 * rf_dp4a(0x01010101, v.x[g][1], rf_dp4a(0x01010101, v.x[g][0], 0));
    }
  }
  // The lane's weight words: low bits L0 (g = 0, 2) and L1 (g = 1, 3), high bits H, the 8 scale
  // bytes of its half super-block S, and d.
  struct Raw { uint32_t L0[2], L1[2], H[2], S[2]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int sb = item >> 1, n = item & 1;
    const uint8_t* ql = L::ql(row, sb) + 64 * n + 8 * p;
    ld_2w<L::kAlign>(ql, r.L0);
    ld_2w<L::kAlign>(ql + 32, r.L1);
    ld_2w<L::kAlign>(L::qh(row, sb) + 32 * n + 8 * p, r.H);
    ld_2w<L::kAlign>(L::sc(row, sb) + 8 * n, r.S);
    r.d = ld_u16(L::d(row, sb));
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    float acc = 0.f;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      int a = 0;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t lo = g & 1 ? r.L1[k] : r.L0[k];
        const uint32_t q = ((lo >> (4 * (g >> 1))) & 0x0f0f0f0fu) | (((r.H[k] >> (2 * g)) & 0x03030303u) << 4);
        a = rf_dp4a(static_cast<int>(q), v.x[g][k], a);
      }
      // scale byte (p / 2) + 2g of the 8: word g / 2, byte (p / 2) + 2 (g % 2)
      const int sc = static_cast<int8_t>((r.S[g >> 1] >> (8 * ((p >> 1) + 2 * (g & 1)))) & 0xffu);
      acc = fmaf(v.dx[g] * sc, static_cast<float>(a - v.s32[g]), acc);
    }
    return rf_half_to_float(r.d) * acc;
  }
  // dot_raw's weight half (once per row and item) and activation half (per token), as Q4_K's.
  struct Prep { int q[4][2]; float ds[4]; };  // 6-bit quants of the four chunks; d x their scales
  __device__ static void prep(const Raw& r, int, int p, int, Prep& w) {
    const float d = rf_half_to_float(r.d);
#pragma unroll
    for (int g = 0; g < 4; ++g) {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t lo = g & 1 ? r.L1[k] : r.L0[k];
        w.q[g][k] = static_cast<int>(((lo >> (4 * (g >> 1))) & 0x0f0f0f0fu) | (((r.H[k] >> (2 * g)) & 0x03030303u) << 4));
      }
      w.ds[g] = d * static_cast<float>(static_cast<int8_t>((r.S[g >> 1] >> (8 * ((p >> 1) + 2 * (g & 1)))) & 0xffu));
    }
  }
  __device__ static float dot_prep(const Prep& w, const Xq& v) {
    float acc = 0.f;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const int a = rf_dp4a(w.q[g][1], v.x[g][1], rf_dp4a(w.q[g][0], v.x[g][0], 0));
      acc = fmaf(v.dx[g] * w.ds[g], static_cast<float>(a - v.s32[g]), acc);
    }
    return acc;
  }
  // Elements 32c + 8p .. +8 (the dot8 part p), for the tensor-core GEMM (matmul_mma.hip).
  __device__ static void dequant8(const uint8_t* row, int c, int p, float v[8]) {
    uint32_t w0, w1;
    float d;
    codes8(row, c, p, w0, w1, d);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v[k] = d * u2f((w0 >> (8 * k)) & 0xffu, 32.f);
      v[4 + k] = d * u2f((w1 >> (8 * k)) & 0xffu, 32.f);
    }
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const int sb = c >> 3, s = c & 7, n = s >> 2, g = s & 3;
    const float d = ld_half(L::d(row, sb));
    const float d0 = d * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g]);
    const float d1 = d * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g + 1]);
    uint32_t lo[8], hi[8];
    const uint8_t* ql = L::ql(row, sb) + 64 * n + 32 * (g & 1);
    const uint8_t* qh = L::qh(row, sb) + 32 * n;
    ld_16<L::kAlign>(ql, lo);
    ld_16<L::kAlign>(ql + 16, lo + 4);
    ld_16<L::kAlign>(qh, hi);
    ld_16<L::kAlign>(qh + 16, hi + 4);
    const int lshift = 4 * (g >> 1), hshift = 2 * g;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(lo, l) >> lshift) & 15) | (((byte_of(hi, l) >> hshift) & 3) << 4);
      v[l] = (l < 16 ? d0 : d1) * u2f(q, 32.f);
    }
  }
};
template <>
struct Fmt<kQ6_K> : Q6Fmt<Q6Plain> {};
template <>
struct Fmt<kQ6_K_G8> : Q6Fmt<Q6Group8> {};

// IQ4_XS {half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}. Chunk s: 6-bit scale (stored +32) from
// nibble s%2 of scales_l[s/2] and bits 2s of scales_h; 16 bytes qs[16s ..) as in IQ4_NL.
template <>
struct Fmt<kIQ4_XS> {
  static constexpr int kBlockElems = 256, kBlockBytes = 136;
  // int8 path: an item is half a super-block (chunks 4 item + p); lane p takes its whole chunk s:
  // the 16 qs bytes (two 8-byte loads: 136-byte blocks are 8-byte aligned) and the 8-byte header
  // (d, scales_h, scales_l), 32 weights per step, code book as IQ4_NL.
  static constexpr int kItemChunks = 4;
  struct Xq { uint4 l, h; float dx; };  // the chunk's 32 activations: elements 0..15, 16..31
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    const int c = 4 * item + p;
    v.l = *reinterpret_cast<const uint4*>(xq + 32 * c);
    v.h = *reinterpret_cast<const uint4*>(xq + 32 * c + 16);
    v.dx = xd[c];
  }
  struct Raw { uint32_t q[4], hd[2]; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int s = 4 * (item & 1) + p;
    const uint8_t* b = row + static_cast<size_t>(item >> 1) * kBlockBytes;
    ld_2w<8>(b + 8 + 16 * s, r.q);
    ld_2w<8>(b + 16 + 16 * s, r.q + 2);
    ld_2w<8>(b, r.hd);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int s = 4 * (item & 1) + p;
    const uint32_t t[4] = {kIq4W0, kIq4W1, kIq4W2, kIq4W3};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int a = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) a = book_dot8(r.q[k], xl[k], xh[k], t, a);
    // 6-bit scale: nibble s % 2 of scales_l[s / 2] (= bits 4s of the scales_l word) | bits 2s of
    // scales_h (the header word's high half) << 4, stored + 32
    const int ls = static_cast<int>(((r.hd[1] >> (4 * s)) & 15u) | (((r.hd[0] >> (16 + 2 * s)) & 3u) << 4)) - 32;
    return rf_half_to_float(r.hd[0] & 0xffffu) * v.dx * static_cast<float>(ls * a);
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dh = ld_u32(b);
    const int ls = ((b[4 + (s >> 1)] >> (4 * (s & 1))) & 15) | (((dh >> (16 + 2 * s)) & 3) << 4);
    const float dl = rf_half_to_float(dh & 0xffffu) * (ls - 32);
    uint32_t w[4];
    ld_16<8>(b + 8 + 16 * s, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = kIq4Values[q & 15] * dl;
      v[i + 16] = kIq4Values[q >> 4] * dl;
    }
  }
};

}  // namespace rocforge::gpu
