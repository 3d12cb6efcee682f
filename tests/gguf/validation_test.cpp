// validation_test.cpp - every structural error the GGUF reader detects, on hand-built corrupt files.
//
// Each test starts from a file that parses (checked by ValidBaseParses) and breaks exactly one field,
// then asserts that the error names the file, the field and the field's byte offset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "gguf/gguf_bytes.h"
#include "rocforge/gguf.h"
#include "test_support.h"

namespace rocforge {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using test::GgufBytes;
using test::parse_error;
using gguf::ValueType;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;

std::string at(size_t offset) { return "offset " + std::to_string(offset) + ": "; }

// One u32 kv and one tensor `w` of `dims`/`type` at data offset `offset`, with `data_bytes` of data.
struct OneTensor {
  GgufBytes g;
  size_t name_at = 0;   // tensor name
  size_t ndims_at = 0;  // n_dims field
  size_t dim0_at = 0;   // first dimension
  size_t type_at = 0;   // tensor type field
  size_t data_at = 0;   // start of the data section
};

OneTensor one_tensor(std::vector<uint64_t> dims = {8}, uint32_t type = kF32, uint64_t offset = 0, size_t data_bytes = 32) {
  OneTensor t;
  t.g.header(3, 1, 1);
  t.g.kv_u32("test.value", 7);
  t.name_at = t.g.tensor("w", dims, type, offset);
  t.ndims_at = t.name_at + 8 + 1;
  t.dim0_at = t.ndims_at + 4;
  t.type_at = t.dim0_at + 8 * dims.size();
  t.g.pad(32);
  t.data_at = t.g.pos();
  t.g.zeros(data_bytes);
  return t;
}

TEST(GgufValidation, ValidBaseParses) {
  OneTensor t = one_tensor();
  auto f = gguf::File::parse(t.g.b.data(), t.g.b.size(), "t.gguf");
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->get_int("test.value"), 7);
  EXPECT_EQ(f->data_offset(), t.data_at);
  EXPECT_EQ(f->tensors()[0].n_bytes, 32u);
  EXPECT_EQ(f->tensors()[0].data, t.g.b.data() + t.data_at);
}

TEST(GgufValidation, BadMagic) {
  OneTensor t = one_tensor();
  t.g.b[0] = 'X';
  const std::string e = parse_error(t.g.b);
  EXPECT_THAT(e, StartsWith("t.gguf: " + at(0) + "magic"));
  EXPECT_THAT(e, HasSubstr("bad magic"));
}

TEST(GgufValidation, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFFFFFu}) {
    OneTensor t = one_tensor();
    t.g.patch<uint32_t>(4, v);
    const std::string e = parse_error(t.g.b);
    EXPECT_THAT(e, HasSubstr(at(4) + "version")) << v;
    EXPECT_THAT(e, HasSubstr("version " + std::to_string(v))) << v;
  }
}

TEST(GgufValidation, Version2Parses) {
  OneTensor t = one_tensor();
  t.g.patch<uint32_t>(4, 2);
  EXPECT_EQ(gguf::File::parse(t.g.b.data(), t.g.b.size(), "t.gguf")->version(), 2u);
}

TEST(GgufValidation, TruncatedInsideHeaderField) {
  OneTensor t = one_tensor();
  t.g.b.resize(6);  // two of the version's four bytes
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(4) + "version: truncated file: needs 4 bytes, 2 left"));
  t.g.b.resize(3);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(0) + "magic: truncated"));
}

TEST(GgufValidation, EmptyInput) {
  EXPECT_THAT(parse_error({}), HasSubstr("truncated"));
  EXPECT_THROW(gguf::File::parse(nullptr, 0, "null"), Error);
}

// A Writer-made file with every kind of field; every strict prefix of it must fail cleanly.
TEST(GgufValidation, EveryPrefixOfAWrittenFileFails) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_bool("flag", true);
  w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({"<s>", "a", "bc"}));
  w.set("nested", gguf::Value::make_array(ValueType::ARRAY, {gguf::Value::make_i32_array({1, 2}), gguf::Value::make_i32_array({})}));
  std::vector<uint8_t> q(68, 0x11);  // Q8_0 32x2: 2 blocks of 34 bytes, then padding to 96
  std::vector<float> v(8, 1.5f);     // F32 8: 32 bytes, so the file ends exactly at its last byte
  w.add_tensor("a", GgmlType::Q8_0, {32, 2}, q.data());
  w.add_tensor("b", GgmlType::F32, {8}, v.data());
  const auto path = test::temp_dir() / "full.gguf";
  w.write(path.string());
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NO_THROW(gguf::File::parse(bytes.data(), bytes.size(), "full"));

  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes, so ASan (in the fuzz build) would also catch a read past the end.
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      gguf::File::parse(prefix.data(), prefix.size(), "prefix");
      ADD_FAILURE() << "prefix of " << n << " of " << bytes.size() << " bytes parsed";
    } catch (const Error& e) {
      EXPECT_THAT(std::string(e.what()), StartsWith("prefix: offset ")) << n;
    }
  }
}

TEST(GgufValidation, CountsBeyondTheFile) {
  OneTensor t = one_tensor();
  t.g.patch<uint64_t>(8, 1ull << 40);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(8) + "tensor_count: count 1099511627776 exceeds"));
  t = one_tensor();
  t.g.patch<uint64_t>(16, ~0ull);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(16) + "metadata_kv_count: count 18446744073709551615 exceeds"));
}

TEST(GgufValidation, DimensionCountOutOfRange) {
  for (uint32_t n : {0u, 5u, 0xFFFFFFFFu}) {
    OneTensor t = one_tensor();
    t.g.patch<uint32_t>(t.ndims_at, n);
    EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.ndims_at) + "w: n_dims " + std::to_string(n) + " out of range")) << n;
  }
}

TEST(GgufValidation, DimensionOutOfRange) {
  OneTensor t = one_tensor({0});
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.dim0_at) + "w: dimension 0 = 0 is out of range"));
  t = one_tensor({8, 1ull << 63});
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.dim0_at + 8) + "w: dimension 1 = 9223372036854775808 is out of range"));
}

TEST(GgufValidation, ElementCountOverflows64Bits) {
  OneTensor t = one_tensor({1ull << 32, 1ull << 32});
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.dim0_at + 8) + "w: element count overflows 64 bits"));
  // 2^31 * 2^31 * 2 = 2^63 elements: fits u64 but not the signed range ggml uses.
  t = one_tensor({1ull << 31, 1ull << 31, 2});
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.dim0_at + 16) + "w: element count overflows 64 bits"));
}

TEST(GgufValidation, ByteSizeOverflows64Bits) {
  // 2^62 F32 elements are a valid count, but 2^64 bytes.
  OneTensor t = one_tensor({1ull << 31, 1ull << 31});
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.ndims_at) + "w: byte size overflows 64 bits"));
}

TEST(GgufValidation, TensorDataPastEndOfFile) {
  OneTensor t = one_tensor({16}, kF32, 0, 32);  // needs 64 bytes, has 32
  std::string e = parse_error(t.g.b);
  EXPECT_THAT(e, HasSubstr(at(t.data_at) + "w: tensor data (offset 0, 64 bytes) extends past the end of the file"));
  // An offset far beyond the file, and one where offset + size would wrap around 2^64.
  t = one_tensor({8}, kF32, 1ull << 40);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr("w: tensor data (offset 1099511627776, 32 bytes) extends past the end"));
  t = one_tensor({8}, kF32, ~0ull - 31);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr("w: tensor data (offset 18446744073709551584, 32 bytes) extends past the end"));
}

TEST(GgufValidation, HeaderEndsBeforeDataSection) {
  OneTensor t = one_tensor();
  t.g.b.resize(t.type_at + 4 + 8);  // right after the tensor info, before the alignment padding
  ASSERT_NE(t.g.b.size() % 32, 0u);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.g.b.size()) + "tensor data: file ends before the tensor data section"));
}

TEST(GgufValidation, OverlappingTensors) {
  for (uint64_t second : {0ull, 32ull}) {
    GgufBytes g;
    g.header(3, 2, 0);
    g.tensor("a", {16}, kF32, 0);  // bytes 0..63
    g.tensor("b", {8}, kF32, second);
    g.pad(32);
    const size_t data_at = g.pos();
    g.zeros(96);
    const std::string e = parse_error(g.b);
    EXPECT_THAT(e, HasSubstr(at(data_at + second)));
    EXPECT_THAT(e, HasSubstr("overlaps tensor '"));
  }
}

TEST(GgufValidation, MisalignedTensorOffset) {
  OneTensor t = one_tensor({8}, kF32, 4, 64);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.data_at) + "w: data offset 4 is not a multiple of the alignment 32"));

  // With general.alignment = 64, offset 32 is misaligned too.
  GgufBytes g;
  g.header(3, 1, 1);
  g.kv_u32("general.alignment", 64);
  g.tensor("w", {8}, kF32, 32);
  g.pad(64);
  const size_t data_at = g.pos();
  g.zeros(64);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(data_at) + "w: data offset 32 is not a multiple of the alignment 64"));
}

TEST(GgufValidation, UnknownTensorType) {
  // 4 and 5 were Q4_2/Q4_3, removed from ggml; 40 is past the last type; 31..33 are unassigned.
  for (uint32_t type : {4u, 5u, 31u, 40u, 0xFFFFFFFFu}) {
    OneTensor t = one_tensor({8}, type);
    EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.type_at) + "w: unknown tensor type " + std::to_string(type))) << type;
  }
}

TEST(GgufValidation, RowLengthNotAMultipleOfBlockSize) {
  OneTensor t = one_tensor({30, 2}, kQ4_0);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(t.ndims_at) + "w: row length 30 is not a multiple of the q4_0 block size 32"));
}

TEST(GgufValidation, UnknownValueType) {
  GgufBytes g;
  g.header(3, 0, 1);
  g.str("k");
  const size_t type_at = g.u32(13);
  g.u32(0);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(type_at) + "k: unknown value type 13"));
}

TEST(GgufValidation, UnknownArrayElementType) {
  GgufBytes g;
  g.header(3, 0, 1);
  g.str("arr");
  g.u32(static_cast<uint32_t>(ValueType::ARRAY));
  const size_t elem_at = g.u32(99);
  g.u64(0);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(elem_at) + "arr: unknown array element type 99"));
}

TEST(GgufValidation, DuplicateKey) {
  GgufBytes g;
  g.header(3, 0, 2);
  g.kv_u32("dup.key", 1);
  const size_t second = g.pos();
  g.kv_u32("dup.key", 2);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(second) + "dup.key: duplicate metadata key"));
}

TEST(GgufValidation, EmptyKeyAndEmptyTensorName) {
  GgufBytes g;
  g.header(3, 0, 1);
  g.kv_u32("", 1);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(24) + "metadata key #0: empty key"));
  OneTensor t;
  t.g.header(3, 1, 0);
  t.g.tensor("", {8}, kF32, 0);
  t.g.pad(32);
  t.g.zeros(32);
  EXPECT_THAT(parse_error(t.g.b), HasSubstr(at(24) + "tensor #0: empty tensor name"));
}

TEST(GgufValidation, DuplicateTensorName) {
  GgufBytes g;
  g.header(3, 2, 0);
  g.tensor("w", {8}, kF32, 0);
  const size_t second = g.tensor("w", {8}, kF32, 32);
  g.pad(32);
  g.zeros(64);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(second) + "w: duplicate tensor name"));
}

TEST(GgufValidation, StringLengthBeyondTheFile) {
  {  // a key
    GgufBytes g;
    g.header(3, 0, 1);
    const size_t len_at = g.u64(1ull << 40);
    g.zeros(16);
    EXPECT_THAT(parse_error(g.b), HasSubstr(at(len_at) + "metadata key #0: string length 1099511627776 runs past the end"));
  }
  {  // a string value whose length is one more than the bytes left
    GgufBytes g;
    g.header(3, 0, 1);
    g.str("s");
    g.u32(static_cast<uint32_t>(ValueType::STRING));
    const size_t len_at = g.u64(5);
    g.b.insert(g.b.end(), {'a', 'b', 'c', 'd'});
    EXPECT_THAT(parse_error(g.b), HasSubstr(at(len_at) + "s: string length 5 runs past the end"));
  }
  {  // a tensor name
    GgufBytes g;
    g.header(3, 1, 0);
    g.u64(~0ull);
    g.zeros(64);
    EXPECT_THAT(parse_error(g.b), HasSubstr(at(24) + "tensor #0 name: string length 18446744073709551615 runs past the end"));
  }
  {  // a string inside an array
    GgufBytes g;
    g.header(3, 0, 1);
    g.str("toks");
    g.u32(static_cast<uint32_t>(ValueType::ARRAY));
    g.u32(static_cast<uint32_t>(ValueType::STRING));
    g.u64(2);
    g.str("ok");
    const size_t len_at = g.u64(1000);
    g.zeros(8);
    EXPECT_THAT(parse_error(g.b), HasSubstr(at(len_at) + "toks: string length 1000 runs past the end"));
  }
}

TEST(GgufValidation, ArrayLengthBeyondTheFile) {
  GgufBytes g;
  g.header(3, 0, 1);
  g.str("arr");
  g.u32(static_cast<uint32_t>(ValueType::ARRAY));
  g.u32(static_cast<uint32_t>(ValueType::UINT32));
  const size_t count_at = g.u64(1ull << 61);
  g.zeros(16);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(count_at) + "arr: array length 2305843009213693952 runs past the end"));
}

// `depth` arrays nested inside each other, the innermost holding one u32 = 42. Returns the offset
// of each array's element-type field (outermost first).
std::vector<size_t> nested(GgufBytes& g, int depth) {
  g.header(3, 0, 1);
  g.str("deep");
  g.u32(static_cast<uint32_t>(ValueType::ARRAY));
  std::vector<size_t> offs;
  for (int d = 0; d < depth; ++d) {
    const bool innermost = d == depth - 1;
    offs.push_back(g.u32(static_cast<uint32_t>(innermost ? ValueType::UINT32 : ValueType::ARRAY)));
    g.u64(1);
  }
  g.u32(42);
  return offs;
}

TEST(GgufValidation, NestedArraysParseUpToTheDepthLimit) {
  GgufBytes g;
  nested(g, 8);
  auto f = gguf::File::parse(g.b.data(), g.b.size(), "t.gguf");
  const gguf::Value* v = f->find("deep");
  ASSERT_NE(v, nullptr);
  for (int d = 0; d < 7; ++d) {
    ASSERT_TRUE(v->is_array());
    ASSERT_EQ(v->elem_type, ValueType::ARRAY);
    ASSERT_EQ(v->arr.size(), 1u);
    v = &v->arr[0];
  }
  ASSERT_EQ(v->elem_type, ValueType::UINT32);
  ASSERT_EQ(v->arr.size(), 1u);
  EXPECT_EQ(v->arr[0].u, 42u);
}

TEST(GgufValidation, NestedArraysTooDeepAreRejected) {
  GgufBytes g;
  const auto offs = nested(g, 9);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(offs[8]) + "deep: arrays nested deeper than 8"));
}

TEST(GgufValidation, BoolNeitherZeroNorOne) {
  GgufBytes g;
  g.header(3, 0, 1);
  g.str("flag");
  g.u32(static_cast<uint32_t>(ValueType::BOOL));
  const size_t v_at = g.u8(2);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(v_at) + "flag: bool value 2 is neither 0 nor 1"));

  GgufBytes a;  // inside an array
  a.header(3, 0, 1);
  a.str("flags");
  a.u32(static_cast<uint32_t>(ValueType::ARRAY));
  a.u32(static_cast<uint32_t>(ValueType::BOOL));
  a.u64(3);
  a.u8(1);
  a.u8(0);
  const size_t bad_at = a.u8(255);
  EXPECT_THAT(parse_error(a.b), HasSubstr(at(bad_at) + "flags: bool value 255 is neither 0 nor 1"));
}

TEST(GgufValidation, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufBytes g;
    g.header(3, 0, 1);
    const size_t type_at = g.kv_u32("general.alignment", a);
    EXPECT_THAT(parse_error(g.b), HasSubstr(at(type_at) + "general.alignment: must be a power of two, found " + std::to_string(a)));
  }
  GgufBytes g;  // right value, wrong type
  g.header(3, 0, 1);
  g.str("general.alignment");
  const size_t type_at = g.u32(static_cast<uint32_t>(ValueType::UINT64));
  g.u64(32);
  EXPECT_THAT(parse_error(g.b), HasSubstr(at(type_at) + "general.alignment: must be u32, found u64"));
}

TEST(GgufValidation, CustomAlignmentIsHonoured) {
  GgufBytes g;
  g.header(3, 2, 1);
  g.kv_u32("general.alignment", 64);
  g.tensor("a", {8}, kF32, 0);
  g.tensor("b", {8}, kF32, 64);
  g.pad(64);
  const size_t data_at = g.pos();
  g.zeros(96);
  auto f = gguf::File::parse(g.b.data(), g.b.size(), "t.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset(), data_at);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->tensor("b")->data, g.b.data() + data_at + 64);
}

TEST(GgufValidation, OpenReportsMissingAndEmptyFiles) {
  const auto dir = test::temp_dir();
  try {
    gguf::File::open((dir / "missing.gguf").string());
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("missing.gguf"));
  }
  std::ofstream((dir / "empty.gguf").string()).close();
  try {
    gguf::File::open((dir / "empty.gguf").string());
    ADD_FAILURE() << "opened an empty file";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("empty.gguf: offset 0: magic: truncated"));
  }
}

}  // namespace
}  // namespace rocforge
