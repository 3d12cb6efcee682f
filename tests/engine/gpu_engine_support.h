// gpu_engine_support.h - whether the engine tests can run on a GPU here (else they SKIP with why).
#pragma once

#include <string>

#include "rocforge/device.h"

namespace rocforge::test {

inline bool have_gpu(std::string* why) {
  const auto sel = device::select_device(device::parse_device_spec("auto"), {}, /*quiet=*/true);
  if (sel.kind == device::Kind::Gpu) return true;
  *why = sel.description;
  return false;
}

}  // namespace rocforge::test
