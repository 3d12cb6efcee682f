// hip_compat.h - lets the same .hip sources build with clang/hipcc (AMD, HIP runtime) and with nvcc
// (NVIDIA, CUDA runtime).
//
// Kernels and launchers are written against the hip* runtime names. Under nvcc this header maps the
// handful of names the project uses onto their cuda* equivalents with type aliases and inline
// functions (never #define of __shfl*: that clashes with cuda_fp16.h). HIP's own NVIDIA headers are
// not used: they do not compile with CUDA 13.
//
// Wave size: 64 on CDNA (gfx90a, gfx942), 32 on RDNA and NVIDIA. Device code reads `warpSize` at run
// time and never assumes a width; the shuffle wrappers below take the full-wave mask on CUDA.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__HIP__) || defined(__HIPCC__)
// ---------------------------------------------------------------- AMD / HIP-clang
#include <hip/hip_runtime.h>

#define RF_BACKEND_NAME "hip"

__device__ inline float rf_shfl_xor(float v, int lane_mask) { return __shfl_xor(v, lane_mask); }
__device__ inline int rf_shfl_xor(int v, int lane_mask) { return __shfl_xor(v, lane_mask); }
__device__ inline double rf_shfl_xor(double v, int lane_mask) { return __shfl_xor(v, lane_mask); }
__device__ inline float rf_shfl(float v, int src_lane) { return __shfl(v, src_lane); }
__device__ inline int rf_shfl(int v, int src_lane) { return __shfl(v, src_lane); }
__device__ inline int rf_shfl_up(int v, int delta) { return __shfl_up(v, delta); }

inline hipError_t rf_graph_instantiate(hipGraphExec_t* exec, hipGraph_t g) {
  return hipGraphInstantiate(exec, g, nullptr, nullptr, 0);
}

// No programmatic dependent launch on AMD: plain stream-ordered launches (see the CUDA side).
__device__ inline void rf_grid_wait() {}
__device__ inline void rf_grid_trigger() {}
__device__ inline void rf_prefetch_l2(const void*) {}
__device__ inline void rf_prefetch_l2_range(const void*, uint32_t) {}  // no bulk prefetch here
template <typename... P, typename... A>
inline hipError_t rf_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, hipStream_t s, A&&... args) {
  hipLaunchKernelGGL(kernel, grid, block, smem, s, static_cast<P>(args)...);
  return hipGetLastError();
}

// IEEE half bits -> float. _Float16 is native on every AMD target.
__device__ inline float rf_half_to_float(uint16_t h) { return static_cast<float>(__builtin_bit_cast(_Float16, h)); }
__device__ inline uint16_t rf_float_to_half(float f) { return __builtin_bit_cast(uint16_t, static_cast<_Float16>(f)); }

// One wave's shared-memory writes visible to its other lanes (a wave runs in lockstep: the fences
// keep the compiler and the LDS counters in order).
__device__ inline void rf_wave_sync() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
}
// A short pause in a spin-wait on another block's store (frees issue slots for the waves working).
__device__ inline void rf_spin_pause() { __builtin_amdgcn_s_sleep(1); }
// x as if rewritten here (an empty asm that claims to change it): values the compiler derives from x
// are made again after this point instead of being hoisted out of a loop and kept live across it.
__device__ inline void rf_opaque(float& x) { asm volatile("" : "+v"(x)); }
// The device address of a __device__ variable.
template <class T>
inline hipError_t rf_symbol_address(void** p, T& sym) { return hipGetSymbolAddress(p, reinterpret_cast<const void*>(&sym)); }

#else
// ---------------------------------------------------------------- NVIDIA / CUDA (nvcc)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define RF_BACKEND_NAME "cuda"

using hipError_t = cudaError_t;
using hipStream_t = cudaStream_t;
using hipEvent_t = cudaEvent_t;
using hipDeviceProp_t = cudaDeviceProp;
using hipMemcpyKind = cudaMemcpyKind;
constexpr hipError_t hipSuccess = cudaSuccess;
constexpr hipMemcpyKind hipMemcpyHostToDevice = cudaMemcpyHostToDevice;
constexpr hipMemcpyKind hipMemcpyDeviceToHost = cudaMemcpyDeviceToHost;
constexpr hipMemcpyKind hipMemcpyDeviceToDevice = cudaMemcpyDeviceToDevice;

inline hipError_t hipGetDeviceCount(int* n) { return cudaGetDeviceCount(n); }
inline hipError_t hipSetDevice(int d) { return cudaSetDevice(d); }
inline hipError_t hipGetDevice(int* d) { return cudaGetDevice(d); }
inline hipError_t hipGetDeviceProperties(hipDeviceProp_t* p, int d) { return cudaGetDeviceProperties(p, d); }
inline hipError_t hipMemGetInfo(size_t* free_b, size_t* total_b) { return cudaMemGetInfo(free_b, total_b); }
inline hipError_t hipMalloc(void** p, size_t n) { return cudaMalloc(p, n); }
inline hipError_t hipFree(void* p) { return cudaFree(p); }
constexpr unsigned int hipHostMallocMapped = cudaHostAllocMapped;
constexpr unsigned int hipHostMallocPortable = cudaHostAllocPortable;
inline hipError_t hipHostMalloc(void** p, size_t n, unsigned int flags) { return cudaHostAlloc(p, n, flags); }
inline hipError_t hipHostGetDevicePointer(void** d, void* h, unsigned int flags) {
  return cudaHostGetDevicePointer(d, h, flags);
}
inline hipError_t hipHostFree(void* p) { return cudaFreeHost(p); }
// Whether `p` is page-locked host memory (a kernel storing there writes across the bus).
inline bool rf_is_host_memory(const void* p) {
  cudaPointerAttributes at{};
  if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return at.type == cudaMemoryTypeHost;
}
inline hipError_t hipMemcpyAsync(void* d, const void* s, size_t n, hipMemcpyKind k, hipStream_t st) {
  return cudaMemcpyAsync(d, s, n, k, st);
}
inline hipError_t hipMemsetAsync(void* d, int v, size_t n, hipStream_t st) { return cudaMemsetAsync(d, v, n, st); }
inline hipError_t hipStreamCreate(hipStream_t* s) { return cudaStreamCreate(s); }
inline hipError_t hipStreamDestroy(hipStream_t s) { return cudaStreamDestroy(s); }
inline hipError_t hipStreamSynchronize(hipStream_t s) { return cudaStreamSynchronize(s); }
inline hipError_t hipDeviceSynchronize() { return cudaDeviceSynchronize(); }
inline hipError_t hipGetLastError() { return cudaGetLastError(); }
inline const char* hipGetErrorString(hipError_t e) { return cudaGetErrorString(e); }
inline hipError_t hipEventCreate(hipEvent_t* e) { return cudaEventCreate(e); }
inline hipError_t hipEventDestroy(hipEvent_t e) { return cudaEventDestroy(e); }
inline hipError_t hipEventRecord(hipEvent_t e, hipStream_t s) { return cudaEventRecord(e, s); }
inline hipError_t hipEventSynchronize(hipEvent_t e) { return cudaEventSynchronize(e); }
inline hipError_t hipStreamWaitEvent(hipStream_t s, hipEvent_t e, unsigned flags) { return cudaStreamWaitEvent(s, e, flags); }
inline hipError_t hipMemcpyPeerAsync(void* d, int dd, const void* s, int sd, size_t n, hipStream_t st) {
  return cudaMemcpyPeerAsync(d, dd, s, sd, n, st);
}
inline hipError_t hipEventElapsedTime(float* ms, hipEvent_t a, hipEvent_t b) { return cudaEventElapsedTime(ms, a, b); }
using hipGraph_t = cudaGraph_t;
using hipGraphExec_t = cudaGraphExec_t;
using hipStreamCaptureMode = cudaStreamCaptureMode;
constexpr hipStreamCaptureMode hipStreamCaptureModeThreadLocal = cudaStreamCaptureModeThreadLocal;
inline hipError_t hipStreamBeginCapture(hipStream_t s, hipStreamCaptureMode m) { return cudaStreamBeginCapture(s, m); }
inline hipError_t hipStreamEndCapture(hipStream_t s, hipGraph_t* g) { return cudaStreamEndCapture(s, g); }
using hipStreamCaptureStatus = cudaStreamCaptureStatus;
constexpr hipStreamCaptureStatus hipStreamCaptureStatusNone = cudaStreamCaptureStatusNone;
inline hipError_t hipStreamIsCapturing(hipStream_t s, hipStreamCaptureStatus* st) { return cudaStreamIsCapturing(s, st); }
inline hipError_t hipGraphLaunch(hipGraphExec_t e, hipStream_t s) { return cudaGraphLaunch(e, s); }
inline hipError_t hipGraphExecDestroy(hipGraphExec_t e) { return cudaGraphExecDestroy(e); }
inline hipError_t hipGraphDestroy(hipGraph_t g) { return cudaGraphDestroy(g); }
inline hipError_t rf_graph_instantiate(hipGraphExec_t* exec, hipGraph_t g) { return cudaGraphInstantiate(exec, g, 0); }
template <typename K>
inline hipError_t hipOccupancyMaxActiveBlocksPerMultiprocessor(int* n, K kernel, int block, size_t smem) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, kernel, block, smem);
}

// Full-warp shuffles. Every lane of the warp takes part at every call site in this project.
__device__ inline float rf_shfl_xor(float v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask); }
__device__ inline int rf_shfl_xor(int v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask); }
__device__ inline double rf_shfl_xor(double v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask); }
__device__ inline float rf_shfl(float v, int src_lane) { return __shfl_sync(0xffffffffu, v, src_lane); }
__device__ inline int rf_shfl(int v, int src_lane) { return __shfl_sync(0xffffffffu, v, src_lane); }
__device__ inline int rf_shfl_up(int v, int delta) { return __shfl_up_sync(0xffffffffu, v, delta); }

__device__ inline float rf_half_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ inline uint16_t rf_float_to_half(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ inline void rf_wave_sync() { __syncwarp(); }
template <class T>
inline hipError_t rf_symbol_address(void** p, T& sym) { return cudaGetSymbolAddress(p, sym); }
__device__ inline void rf_spin_pause() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  __nanosleep(32);
#endif
}
__device__ inline void rf_opaque(float& x) { asm volatile("" : "+f"(x)); }

// Programmatic dependent launch (sm_90+). A kernel started by rf_launch may begin while the kernel
// before it in the stream is still draining: its blocks get resident early, may prefetch what no
// earlier kernel writes (weights), and must call rf_grid_wait() before touching any buffer an
// earlier kernel reads or writes (it returns once those kernels finished and their writes are
// visible). rf_grid_trigger() lets the next kernel start early. Inside a captured graph this becomes
// a programmatic edge, so the gap between the decode step's ~400 small launches shrinks. Both calls
// are no-ops for kernels launched the ordinary way; ROCFORGE_GPU_PDL=0 turns the attribute off.
// Every kernel launched through rf_launch must call rf_grid_wait() before its first access to such
// a buffer: one that does not races with the kernel before it (a missing wait in the decode
// attention kernel once gave wrong logits only inside captured graphs, where the overlap is widest).
__device__ inline void rf_grid_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ inline void rf_grid_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ inline void rf_prefetch_l2(const void* p) {
#if defined(__CUDA_ARCH__)
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#endif
}

// Bulk copies global -> shared memory by the copy engine (cp.async.bulk, sm_90+), completing on a
// shared-memory mbarrier: one thread streams kilobytes of weights with a single instruction, and
// the bytes in flight no longer depend on registers or occupancy (matvec_staged.hip). Addresses and
// sizes are multiples of 16. Compiled to nothing below sm_90 (the launcher never picks that kernel
// there: matvec_staged.hip checks the device and the binary).
#define RF_HAS_BULK_COPY 1
__device__ inline uint32_t rf_smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
__device__ inline void rf_mbar_init(uint64_t* bar, int count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(rf_smem_addr(bar)), "r"(count) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");  // visible to the copy engine
#endif
}
// One arrival that also announces `bytes` of copies to complete the barrier's current phase.
__device__ inline void rf_mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(rf_smem_addr(bar)), "r"(bytes) : "memory");
#endif
}
// One plain arrival (a consumer is done with the stage the barrier guards).
__device__ inline void rf_mbar_arrive(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(rf_smem_addr(bar)) : "memory");
#endif
}
// Barrier among the first `threads` threads of the block only (named barrier 1; 0 is __syncthreads).
__device__ inline void rf_named_sync(int threads) {
#if defined(__CUDA_ARCH__)
  asm volatile("bar.sync 1, %0;" ::"r"(threads) : "memory");
#endif
}
// Waits until the barrier's phase with parity `phase` has completed.
__device__ inline void rf_mbar_wait(uint64_t* bar, uint32_t phase) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
        : "=r"(done)
        : "r"(rf_smem_addr(bar)), "r"(phase)
        : "memory");
  } while (!done);
#endif
}
// dst (shared) <- src (global), `bytes` bytes, completing on bar. The weights are read once per
// token, so they are marked first to leave L2 (the activations and the KV cache stay).
__device__ inline void rf_bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar, uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          rf_smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(rf_smem_addr(bar)), "l"(policy)
      : "memory");
#endif
}
__device__ inline uint64_t rf_l2_evict_first() {
  uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
#endif
  return policy;
}
__device__ inline uint64_t rf_l2_evict_normal() {
  uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
#endif
  return policy;
}
// Asks the copy engine to bring [p, p + bytes) into L2 (cp.async.bulk.prefetch, sm_90+): one
// instruction, nothing waits for it. p and bytes multiples of 16.
__device__ inline void rf_prefetch_l2_range(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
  (void)p, (void)bytes;
#endif
}
bool rf_pdl_enabled();  // backend.hip: $ROCFORGE_GPU_PDL, default on
template <typename... P, typename... A>
inline hipError_t rf_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, hipStream_t s, A&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = rf_pdl_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...);
}

#endif

// bfloat16 is the top half of a float on every target.
__device__ inline float rf_bf16_to_float(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }

// c + sum of the four signed byte products of a and b (CUDA __dp4a; AMD v_dot4 where the target has
// it, else four multiply-adds).
__device__ inline int rf_dp4a(int a, int b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(a, b, c);
#elif defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__) || defined(__gfx1200__) || \
    defined(__gfx1201__)
  return __builtin_amdgcn_sudot4(true, a, true, b, c, false);
#elif defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || \
    defined(__gfx941__) || defined(__gfx942__) || defined(__gfx1030__)
  return __builtin_amdgcn_sdot4(a, b, c, false);
#else
  for (int i = 0; i < 4; ++i)
    c += static_cast<int8_t>((a >> (8 * i)) & 0xff) * static_cast<int8_t>((b >> (8 * i)) & 0xff);
  return c;
#endif
}

// Asynchronous copies global -> shared memory of N = 16, 8 or 4 aligned bytes per thread (cp.async,
// sm_80+; 16-byte copies bypass L1 unless kViaL1, for bytes that neighbouring warps copy too): a
// thread issues all of its copies without registers to land them in, and rf_async_wait<N>() returns
// once at most N of its committed groups are still in flight (a block barrier must follow before
// other threads read the bytes). Elsewhere (AMD, older cards) each is a plain load and store,
// complete when the call returns.
template <int N, bool kViaL1 = false>
__device__ inline void rf_async_copy(void* smem, const void* gmem) {
  static_assert(N == 16 || N == 8 || N == 4, "cp.async moves 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  if constexpr (N == 16 && !kViaL1) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(gmem));
  else asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(d), "l"(gmem), "n"(N));
#else
  struct alignas(N) Bytes { unsigned char b[N]; };
  *static_cast<Bytes*>(smem) = *static_cast<const Bytes*>(gmem);
#endif
}
__device__ inline void rf_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ inline void rf_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

// Sum / max over the lanes of one wave; every lane gets the result. Width comes from warpSize.
__device__ inline float rf_wave_sum(float v) {
  for (int off = warpSize / 2; off > 0; off /= 2) v += rf_shfl_xor(v, off);
  return v;
}
__device__ inline float rf_wave_max(float v) {
  for (int off = warpSize / 2; off > 0; off /= 2) v = fmaxf(v, rf_shfl_xor(v, off));
  return v;
}
__device__ inline int rf_wave_sum(int v) {
  for (int off = warpSize / 2; off > 0; off /= 2) v += rf_shfl_xor(v, off);
  return v;
}
__device__ inline int rf_wave_max(int v) {
  for (int off = warpSize / 2; off > 0; off /= 2) v = max(v, rf_shfl_xor(v, off));
  return v;
}

// Element i (value v) of quantize_q8's int8 layout, q[i] = rint(v * 127 / max|v|) and d[i / 32] =
// max|v| / 127 over its 32-element chunk: the chunk's 32 lanes must be an aligned 32-lane group of
// the calling threads (xor-shuffles of offset < 32 stay inside it on either wave width), all calling.
__device__ inline void rf_quantize_q8_lane(float v, int i, int8_t* __restrict__ q, float* __restrict__ d) {
  float amax = fabsf(v);
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  q[i] = static_cast<int8_t>(rintf(v * inv));
  if ((i & 31) == 0) d[i >> 5] = amax / 127.f;
}

// Double-precision block sum (sampling's probability masses over a whole vocabulary, where float
// rounding is as large as one token's share); `scratch` holds kRfMaxWavesPerBlock doubles.
__device__ inline double rf_block_sum_d(double v, double* scratch);

// Largest block any kernel here launches; shared scratch for cross-wave reductions is sized for
// the narrowest wave (32), so it fits every wave width.
constexpr int kRfMaxBlock = 1024;
constexpr int kRfMaxWavesPerBlock = kRfMaxBlock / 32;

// Block-wide sum / max; `scratch` holds kRfMaxWavesPerBlock floats. All threads get the result.
__device__ inline float rf_block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  const int n_waves = (blockDim.x + warpSize - 1) / warpSize;
  v = rf_wave_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[wave] = v;
  __syncthreads();
  float r = 0.f;
  for (int i = 0; i < n_waves; ++i) r += scratch[i];
  return r;
}
__device__ inline float rf_block_max(float v, float* scratch) {
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  const int n_waves = (blockDim.x + warpSize - 1) / warpSize;
  v = rf_wave_max(v);
  __syncthreads();
  if (lane == 0) scratch[wave] = v;
  __syncthreads();
  float r = -INFINITY;
  for (int i = 0; i < n_waves; ++i) r = fmaxf(r, scratch[i]);
  return r;
}

__device__ inline double rf_block_sum_d(double v, double* scratch) {
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  const int n_waves = (blockDim.x + warpSize - 1) / warpSize;
  for (int off = warpSize / 2; off > 0; off /= 2) v += rf_shfl_xor(v, off);
  __syncthreads();
  if (lane == 0) scratch[wave] = v;
  __syncthreads();
  double r = 0.0;
  for (int i = 0; i < n_waves; ++i) r += scratch[i];
  return r;
}
