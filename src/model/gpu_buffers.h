// gpu_buffers.h - device and page-locked host memory owned through a GPU backend's function table
// (the GPU executor's buffers). Internal to src/model.
#pragma once

#include <cstddef>
#include <string>

#include "gpu/backend_api.h"
#include "rocforge/device.h"

namespace rocforge::gpu_detail {

// A device allocation released with the backend's free.
class DevBuf {
 public:
  DevBuf() = default;
  DevBuf(const device::GpuBackend* be, size_t bytes) : be_(be), bytes_(bytes) {
    if (bytes) be->check(be->api().malloc(&p_, bytes), "allocating " + std::to_string(bytes >> 20) + " MiB on the GPU");
  }
  ~DevBuf() { reset(); }
  DevBuf(DevBuf&& o) noexcept : be_(o.be_), p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, p_ = o.p_, bytes_ = o.bytes_;
      o.p_ = nullptr;
    }
    return *this;
  }
  void reset() {
    if (p_) be_->api().free(p_);
    p_ = nullptr;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  const device::GpuBackend* be_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory released with the backend's free_host.
class HostBuf {
 public:
  HostBuf() = default;
  HostBuf(const device::GpuBackend* be, size_t bytes) : be_(be) {
    if (be->api().malloc_host(&p_, bytes) != 0) p_ = nullptr;  // optional: callers fall back to pageable copies
  }
  ~HostBuf() {
    if (p_) be_->api().free_host(p_);
  }
  HostBuf(const HostBuf&) = delete;
  HostBuf& operator=(HostBuf&& o) noexcept {
    if (this != &o) {
      if (p_) be_->api().free_host(p_);
      be_ = o.be_, p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  float* floats() const { return static_cast<float*>(p_); }
  void* get() const { return p_; }

 private:
  const device::GpuBackend* be_ = nullptr;
  void* p_ = nullptr;
};

}  // namespace rocforge::gpu_detail
