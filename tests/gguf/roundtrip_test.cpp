// roundtrip_test.cpp - gguf::Writer output read back by gguf::File: every value type, nested arrays,
// arrays of strings, tensor data and alignment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "rocforge/gguf.h"
#include "test_support.h"

namespace rocforge {
namespace {

using gguf::Value;
using gguf::ValueType;

Value scalar(ValueType t, uint64_t u, int64_t i, double f) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

// One value of each scalar type, at the edges of its range.
std::vector<std::pair<std::string, Value>> all_scalars() {
  return {
      {"u8", scalar(ValueType::UINT8, 255, 0, 0)},
      {"i8", scalar(ValueType::INT8, 0, -128, 0)},
      {"u16", scalar(ValueType::UINT16, 65535, 0, 0)},
      {"i16", scalar(ValueType::INT16, 0, -32768, 0)},
      {"u32", scalar(ValueType::UINT32, 0xFFFFFFFFu, 0, 0)},
      {"i32", scalar(ValueType::INT32, 0, std::numeric_limits<int32_t>::min(), 0)},
      {"u64", scalar(ValueType::UINT64, ~0ull, 0, 0)},
      {"i64", scalar(ValueType::INT64, 0, std::numeric_limits<int64_t>::min(), 0)},
      {"f32", scalar(ValueType::FLOAT32, 0, 0, static_cast<double>(3.14159274f))},
      {"f64", scalar(ValueType::FLOAT64, 0, 0, 2.718281828459045)},
      {"bool_t", Value::make_bool(true)},
      {"bool_f", Value::make_bool(false)},
      {"str", Value::make_string(std::string("h\xC3\xA9llo\n\0x", 9))},
      {"str_empty", Value::make_string("")},
  };
}

void expect_same(const Value& a, const Value& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  switch (a.type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
      EXPECT_EQ(a.u, b.u) << where;
      break;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      EXPECT_EQ(a.i, b.i) << where;
      break;
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      EXPECT_EQ(a.f, b.f) << where;
      break;
    case ValueType::BOOL: EXPECT_EQ(a.b, b.b) << where; break;
    case ValueType::STRING: EXPECT_EQ(a.str, b.str) << where; break;
    case ValueType::ARRAY:
      ASSERT_EQ(a.elem_type, b.elem_type) << where;
      ASSERT_EQ(a.arr.size(), b.arr.size()) << where;
      for (size_t k = 0; k < a.arr.size(); ++k) expect_same(a.arr[k], b.arr[k], where + "[" + std::to_string(k) + "]");
      break;
  }
}

TEST(GgufRoundTrip, EveryValueType) {
  gguf::Writer w;
  std::vector<std::pair<std::string, Value>> expected;
  for (auto& [k, v] : all_scalars()) {
    expected.push_back({"s." + k, v});
    // The same type as a 3-element array.
    expected.push_back({"a." + k, Value::make_array(v.type, {v, v, v})});
  }
  expected.push_back({"a.strings", Value::make_string_array({"<s>", "", "\xE2\x96\x81the", std::string(300, 'x')})});
  expected.push_back({"a.empty", Value::make_array(ValueType::INT32, {})});
  // Nested: [[1,2],[],[3]] and [["a"],["b","c"]] and three levels deep.
  expected.push_back({"n.ints", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1, 2}), Value::make_i32_array({}),
                                                                     Value::make_i32_array({3})})});
  expected.push_back({"n.strings", Value::make_array(ValueType::ARRAY, {Value::make_string_array({"a"}),
                                                                        Value::make_string_array({"b", "c"})})});
  expected.push_back({"n.deep", Value::make_array(ValueType::ARRAY,
                                                  {Value::make_array(ValueType::ARRAY, {Value::make_f32_array({0.5f, -2.0f})})})});
  for (const auto& [k, v] : expected) w.set(k, v);

  const auto path = (test::temp_dir() / "values.gguf").string();
  w.write(path);
  auto f = gguf::File::open(path);
  ASSERT_EQ(f->metadata().size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ(f->metadata()[k].key, expected[k].first) << "keys keep their order";
    expect_same(f->metadata()[k].value, expected[k].second, expected[k].first);
  }
  EXPECT_EQ(f->get_string_array("a.strings")->at(2), "\xE2\x96\x81the");
  EXPECT_EQ(f->get_int("s.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get_bool("s.bool_t"), true);
  EXPECT_THROW(f->get_string("s.u32"), Error);  // present with the wrong type
  EXPECT_FALSE(f->get_string("absent").has_value());
}

TEST(GgufRoundTrip, SetReplacesInPlaceAndRemoveDeletes) {
  gguf::Writer w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_u32("c", 3);
  w.set_string("a", "one");
  w.remove("b");
  const auto path = (test::temp_dir() / "kv.gguf").string();
  w.write(path);
  auto f = gguf::File::open(path);
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "a");
  EXPECT_EQ(f->get_string("a"), "one");
  EXPECT_EQ(f->metadata()[1].key, "c");
}

TEST(GgufRoundTrip, TensorDataShapesAndAlignment) {
  for (uint32_t alignment : {32u, 64u, 256u}) {
    gguf::Writer w;
    w.set_alignment(alignment);
    std::vector<float> a(3 * 5);
    for (size_t k = 0; k < a.size(); ++k) a[k] = static_cast<float>(k) * 0.25f - 1.0f;
    std::vector<uint8_t> q(2 * 4 * 18);  // Q4_0 64 x 4 (x1): 2 blocks per row, 18 bytes each
    for (size_t k = 0; k < q.size(); ++k) q[k] = static_cast<uint8_t>(k * 7 + 1);
    std::vector<uint16_t> h(7);
    for (size_t k = 0; k < h.size(); ++k) h[k] = static_cast<uint16_t>(0x3C00 + k);
    w.add_tensor("a", GgmlType::F32, {3, 5}, a.data());
    w.add_tensor("q", GgmlType::Q4_0, {64, 4, 1}, q.data());
    w.add_tensor("h", GgmlType::F16, {7}, h.data());
    size_t progress_calls = 0;
    w.on_progress([&](size_t i, size_t n, const std::string&) {
      EXPECT_EQ(i, progress_calls);
      EXPECT_EQ(n, 3u);
      ++progress_calls;
    });
    const auto path = (test::temp_dir() / "t.gguf").string();
    w.write(path);
    EXPECT_EQ(progress_calls, 3u);

    auto f = gguf::File::open(path);
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    ASSERT_EQ(f->tensors().size(), 3u);
    const auto* ta = f->tensor("a");
    const auto* tq = f->tensor("q");
    const auto* th = f->tensor("h");
    ASSERT_TRUE(ta && tq && th);
    EXPECT_EQ(ta->shape, (std::vector<uint64_t>{3, 5}));
    EXPECT_EQ(ta->rows(), 5u);
    EXPECT_EQ(tq->shape, (std::vector<uint64_t>{64, 4, 1}));
    EXPECT_EQ(tq->type, GgmlType::Q4_0);
    EXPECT_EQ(tq->n_bytes, q.size());
    EXPECT_EQ(th->type, GgmlType::F16);
    for (const auto* t : {ta, tq, th}) EXPECT_EQ(t->offset % alignment, 0u) << t->name;
    EXPECT_EQ(std::memcmp(ta->data, a.data(), a.size() * 4), 0);
    EXPECT_EQ(std::memcmp(tq->data, q.data(), q.size()), 0);
    EXPECT_EQ(std::memcmp(th->data, h.data(), h.size() * 2), 0);
  }
}

TEST(GgufRoundTrip, WriterRejectsBadTensors) {
  gguf::Writer w;
  std::vector<float> d(64);
  w.add_tensor("x", GgmlType::F32, {8}, d.data());
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {8}, d.data()), Error);
  EXPECT_THROW(w.add_tensor("y", GgmlType::Q4_0, {30}, d.data()), Error);
  EXPECT_THROW(w.add_tensor("z", GgmlType::F32, {}, d.data()), Error);
  EXPECT_THROW(w.add_tensor("z", GgmlType::F32, {1, 1, 1, 1, 1}, d.data()), Error);
  EXPECT_THROW(w.set_alignment(48), Error);
  // Shapes the reader would reject: a zero dimension, 2^64 elements.
  EXPECT_THROW(w.add_tensor("z", GgmlType::F32, {8, 0}, d.data()), Error);
  EXPECT_THROW(w.add_tensor("z", GgmlType::F32, {1ull << 32, 1ull << 32}, d.data()), Error);
  EXPECT_EQ(w.tensor_count(), 1u);
}

TEST(GgufRoundTrip, WriterRejectsValuesTheReaderCannotRead) {
  gguf::Writer w;
  EXPECT_THROW(w.set_u32("", 1), Error);
  // An i32 array holding a string would be written in the string's encoding.
  EXPECT_THROW(w.set("mixed", Value::make_array(ValueType::INT32, {Value::make_i32(1), Value::make_string("x")})), Error);
  EXPECT_THROW(w.set("nested", Value::make_array(ValueType::ARRAY, {Value::make_array(ValueType::UINT32, {Value::make_i32(1)})})),
               Error);
  w.set("ok", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1})}));
}

// A failing producer must not leave a file (or its .tmp) behind.
TEST(GgufRoundTrip, FailedWriteLeavesNoFile) {
  gguf::Writer w;
  w.add_tensor("x", GgmlType::F32, {8}, [](uint8_t*, size_t) { throw Error("producer failed"); });
  const auto path = test::temp_dir() / "fail.gguf";
  EXPECT_THROW(w.write(path.string()), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
}

// Copying a real file's metadata and tensors yields a file that reads back identically.
TEST(GgufRoundTrip, CopyOfStories260KIsIdentical) {
  ROCFORGE_REQUIRE_FIXTURE(src_path, "models/stories260K/stories260K.gguf");
  auto src = gguf::File::open(src_path.string());
  gguf::Writer w;
  w.copy_metadata(*src);
  for (const auto& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
  const auto path = (test::temp_dir() / "copy.gguf").string();
  w.write(path);
  auto dst = gguf::File::open(path);
  ASSERT_EQ(dst->metadata().size(), src->metadata().size());
  for (size_t k = 0; k < src->metadata().size(); ++k) {
    EXPECT_EQ(dst->metadata()[k].key, src->metadata()[k].key);
    expect_same(dst->metadata()[k].value, src->metadata()[k].value, src->metadata()[k].key);
  }
  ASSERT_EQ(dst->tensors().size(), src->tensors().size());
  for (size_t k = 0; k < src->tensors().size(); ++k) {
    const auto& a = src->tensors()[k];
    const auto& b = dst->tensors()[k];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.shape, b.shape);
    ASSERT_EQ(a.n_bytes, b.n_bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
  }
}

}  // namespace
}  // namespace rocforge
