// --device parsing and selection: the CPU fallback when no backend library is found, a clear error
// for --device gpu without a GPU, and (where the built backend finds a device) GPU selection.
#include <gtest/gtest.h>

#include <filesystem>

#include "gpu_test_support.h"
#include "rocforge/device.h"
#include "rocforge/error.h"
#include "test_support.h"

namespace rocforge::device {
namespace {

LoadOptions nowhere() {
  LoadOptions o;
  o.default_search = false;
  o.extra_dirs.push_back(test::temp_dir());  // an empty folder: no backend library in it
  return o;
}

TEST(DeviceSpec, ParsesEveryForm) {
  EXPECT_EQ(parse_device_spec("auto").mode, DeviceSpec::Mode::Auto);
  EXPECT_EQ(parse_device_spec("cpu").mode, DeviceSpec::Mode::Cpu);
  const auto g = parse_device_spec("gpu");
  EXPECT_EQ(g.mode, DeviceSpec::Mode::Gpu);
  EXPECT_EQ(g.index, 0);
  const auto g3 = parse_device_spec("gpu:3");
  EXPECT_EQ(g3.mode, DeviceSpec::Mode::Gpu);
  EXPECT_EQ(g3.index, 3);
  EXPECT_TRUE(g3.list.empty()) << "gpu:N is that GPU alone";
  const auto two = parse_device_spec("gpu:1,0");
  EXPECT_EQ(two.mode, DeviceSpec::Mode::Gpu);
  EXPECT_EQ(two.index, 1);
  EXPECT_EQ(two.list, (std::vector<int>{1, 0}));
  EXPECT_EQ(parse_device_spec("gpu:0,0,2").list, (std::vector<int>{0, 0, 2})) << "a GPU may repeat";
}

TEST(DeviceSpec, RejectsBadValuesNamingThem) {
  for (const char* bad : {"", "GPU", "gpu:", "gpu:x", "gpu:-1", "tpu", "gpu:99999999", "gpu:0,", "gpu:,1", "gpu:0,,1",
                          "gpu:0,x", "gpu:0;1"}) {
    try {
      parse_device_spec(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--device"), std::string::npos) << e.what();
    }
  }
}

TEST(DeviceSelect, AutoFallsBackToCpuWithoutBackendLibrary) {
  std::string why;
  EXPECT_EQ(GpuBackend::load(nowhere(), &why), nullptr);
  EXPECT_NE(why.find("no GPU backend library"), std::string::npos) << why;
  const Selection s = select_device(parse_device_spec("auto"), nowhere(), /*quiet=*/true);
  EXPECT_EQ(s.kind, Kind::Cpu);
  EXPECT_EQ(s.backend, nullptr);
  EXPECT_NE(s.description.find("CPU"), std::string::npos) << s.description;
  EXPECT_NE(s.description.find("no GPU"), std::string::npos) << s.description;
}

TEST(DeviceSelect, GpuWithoutBackendIsAClearError) {
  try {
    select_device(parse_device_spec("gpu"), nowhere(), true);
    FAIL() << "--device gpu succeeded without a backend";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--device gpu"), std::string::npos) << m;
    EXPECT_NE(m.find("no GPU backend library"), std::string::npos) << m;
  }
}

TEST(DeviceSelect, CpuNeverLoadsABackend) {
  LoadOptions o;
  o.extra_dirs.push_back(ROCFORGE_BINARY_DIR);
  const Selection s = select_device(parse_device_spec("cpu"), o, true);
  EXPECT_EQ(s.kind, Kind::Cpu);
  EXPECT_EQ(s.backend, nullptr);
}

TEST(DeviceSelect, NonBackendLibraryIsRejected) {
  // libc is a loadable shared library without the rocforge entry point.
  EXPECT_THROW(GpuBackend::load_file("libc.so.6"), Error);
}

// With the backend built in this tree: auto picks the GPU exactly when the backend sees one, and
// the device facts are sane; a GPU index past the last device is an error.
TEST(DeviceSelect, BuiltBackendMatchesItsDeviceCount) {
  LoadOptions o;
  o.default_search = false;
  o.extra_dirs.push_back(ROCFORGE_BINARY_DIR);
  std::string why;
  auto b = GpuBackend::load(o, &why);
  if (!b) GTEST_SKIP() << "no GPU backend library built in " << ROCFORGE_BINARY_DIR << ": " << why;
  const int n = b->device_count();
  const Selection s = select_device(parse_device_spec("auto"), o, true);
  if (n == 0) {
    EXPECT_EQ(s.kind, Kind::Cpu) << s.description;
    EXPECT_THROW(select_device(parse_device_spec("gpu"), o, true), Error);
    return;
  }
  ASSERT_EQ(s.kind, Kind::Gpu) << s.description;
  EXPECT_FALSE(s.gpu.name.empty());
  EXPECT_TRUE(s.gpu.wave_size == 32 || s.gpu.wave_size == 64) << s.gpu.wave_size;
  EXPECT_GT(s.gpu.total_memory, s.gpu.free_memory / 2);
  EXPECT_GT(s.gpu.free_memory, 0u);
  EXPECT_GT(s.gpu.multiprocessors, 0);
  EXPECT_THROW(select_device(parse_device_spec("gpu:" + std::to_string(n)), o, true), Error);
}

}  // namespace
}  // namespace rocforge::device
