// reference_test.cpp - dequantization matches the independent reference vectors bit for bit.
//
// Fixtures: quant-reference/NAME.blocks.bin (raw blocks) and NAME.f32.bin (their values, computed
// by gguf-py), listed in quant-reference/manifest.json.
#include <gtest/gtest.h>

#include <cstdint>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "rocforge/quant.h"
#include "test_support.h"

namespace rocforge::quant {
namespace {

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Extracts the integer after "key": inside the object that follows "name": in a flat manifest
// (keeps the test free of a JSON dependency; the manifest is two levels deep and regular).
int64_t manifest_int(const std::string& manifest, const std::string& name, const std::string& key) {
  const size_t obj = manifest.find("\"" + name + "\"");
  if (obj == std::string::npos) return -1;
  const size_t end = manifest.find('}', obj);
  const size_t k = manifest.find("\"" + key + "\"", obj);
  if (k == std::string::npos || k > end) return -1;
  const size_t colon = manifest.find(':', k);
  return std::stoll(manifest.substr(colon + 1));
}

class ReferenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceTest, DequantizeMatchesBitForBit) {
  const std::string name = GetParam();
  ROCFORGE_REQUIRE_FIXTURE(manifest_path, "quant-reference/manifest.json");
  ROCFORGE_REQUIRE_FIXTURE(blocks_path, "quant-reference/" + name + ".blocks.bin");
  ROCFORGE_REQUIRE_FIXTURE(values_path, "quant-reference/" + name + ".f32.bin");
  const std::vector<uint8_t> m = read_all(manifest_path);
  const std::string manifest(m.begin(), m.end());
  const int64_t type_id = manifest_int(manifest, name, "ggml_type_id");
  const int64_t blocks = manifest_int(manifest, name, "blocks");
  const int64_t block_bytes = manifest_int(manifest, name, "block_bytes");
  const int64_t block_elems = manifest_int(manifest, name, "block_elements");
  ASSERT_GT(type_id, -1) << name << " missing from manifest";
  ASSERT_GT(blocks, 0);

  const auto traits = ggml_type_traits(static_cast<uint32_t>(type_id));
  ASSERT_TRUE(traits.has_value());
  EXPECT_EQ(traits->name, name);
  EXPECT_EQ(traits->block_bytes, block_bytes);
  EXPECT_EQ(traits->block_elems, block_elems);
  ASSERT_TRUE(can_dequantize(traits->type));

  const std::vector<uint8_t> raw = read_all(blocks_path);
  const std::vector<uint8_t> expected_bytes = read_all(values_path);
  const int64_t n = blocks * block_elems;
  ASSERT_EQ(static_cast<int64_t>(raw.size()), blocks * block_bytes);
  ASSERT_EQ(static_cast<int64_t>(expected_bytes.size()), n * 4);

  std::vector<float> got(n);
  dequantize_row(traits->type, raw.data(), got.data(), n);
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t want, have;
    std::memcpy(&want, expected_bytes.data() + 4 * i, 4);
    std::memcpy(&have, &got[i], 4);
    if (want != have && ++mismatches <= 5)
      ADD_FAILURE() << name << " element " << i << " (block " << i / block_elems << "): got 0x" << std::hex << have
                    << " want 0x" << want;
  }
  EXPECT_EQ(mismatches, 0) << name;
}

// Values the format represents exactly (the reference blocks' own values) must survive quantization
// almost unchanged: exactly for the single-scale symmetric formats, whose search always tries the
// scale that maps the extreme value onto the end of the range; within 2% RMS (several times below
// the N(0,1) error) for the rest, whose grids depend on how the scales were themselves quantized.
TEST_P(ReferenceTest, RequantizingRepresentableValuesIsNearlyLossless) {
  const std::string name = GetParam();
  ROCFORGE_REQUIRE_FIXTURE(values_path, "quant-reference/" + name + ".f32.bin");
  const std::vector<uint8_t> bytes = read_all(values_path);
  const GgmlType t = *ggml_type_from_name(name);
  const int64_t n = static_cast<int64_t>(bytes.size() / 4);
  std::vector<float> x(n), w(n);
  std::memcpy(x.data(), bytes.data(), bytes.size());
  std::vector<uint8_t> q(row_bytes(t, n));
  quantize_row(t, x.data(), q.data(), n);
  dequantize_row(t, q.data(), w.data(), n);
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (static_cast<double>(w[i]) - x[i]) * (static_cast<double>(w[i]) - x[i]);
    den += static_cast<double>(x[i]) * x[i];
  }
  const bool exact = name == "q4_0" || name == "q5_0" || name == "iq4_nl" || name == "mxfp4" || name == "f16" ||
                     name == "bf16";
  if (exact) {
    EXPECT_EQ(num, 0.0) << name;
  } else {
    EXPECT_LT(std::sqrt(num / den), 0.02) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, ReferenceTest,
                         ::testing::Values("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
                                           "q6_k", "iq4_nl", "iq4_xs", "mxfp4", "f16", "bf16"),
                         [](const auto& info) { return std::string(info.param); });

// Every format in the manifest is covered by the list above (catches a manifest growing new ones).
TEST(ReferenceManifest, EveryListedFormatIsTested) {
  ROCFORGE_REQUIRE_FIXTURE(manifest_path, "quant-reference/manifest.json");
  const std::vector<uint8_t> m = read_all(manifest_path);
  const std::string manifest(m.begin(), m.end());
  const std::vector<std::string> tested = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k",
                                           "q5_k", "q6_k", "iq4_nl", "iq4_xs", "mxfp4", "f16", "bf16"};
  size_t listed = 0;
  for (size_t pos = manifest.find("\"ggml_type_id\""); pos != std::string::npos;
       pos = manifest.find("\"ggml_type_id\"", pos + 1))
    ++listed;
  EXPECT_EQ(listed, tested.size());
  for (const auto& t : tested) EXPECT_NE(manifest.find("\"" + t + "\""), std::string::npos) << t;
}

}  // namespace
}  // namespace rocforge::quant
