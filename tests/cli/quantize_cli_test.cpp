// quantize_cli_test.cpp - rocforge quantize: types chosen per tensor (docs/tools.md), metadata
// copied, file type set, values close to the input, determinism, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "cli/cli_runner.h"
#include "rocforge/gguf.h"
#include "rocforge/quant.h"
#include "tools/quant_plan.h"

namespace rocforge {
namespace {

std::vector<float> dequantize(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const auto n = static_cast<int64_t>(t.shape[0]);
  const size_t rb = quant::row_bytes(t.type, n);
  for (uint64_t r = 0; r < t.rows(); ++r) quant::dequantize_row(t.type, t.data + r * rb, out.data() + r * n, n);
  return out;
}

// rms(a - b) / rms(a)
double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, s = 0;
  for (size_t k = 0; k < a.size(); ++k) e += (double(a[k]) - b[k]) * (double(a[k]) - b[k]), s += double(a[k]) * a[k];
  return std::sqrt(e / std::max(s, 1e-30));
}

test::CliResult quantize(const std::filesystem::path& in, const std::filesystem::path& out, const std::string& type,
                         std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"quantize", in.string(), out.string(), type};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::run_rocforge(args, out.parent_path());
}

// Bound on the relative RMS error of one tensor for each output type: about 1.5x what each format
// measured on these weights (2026-11-26: q8_0 0.006, q6_k 0.017, q5_* 0.034-0.040, 4-bit 0.070-0.092,
// mxfp4 0.112, q3_k 0.145, q2_k 0.264, bf16 0.0017, f16 0.0002), so a wrong block layout or a
// broken scale (errors of 50-100%) fails while honest rounding passes.
double bound(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0.0;
    case GgmlType::F16: return 5e-4;
    case GgmlType::BF16: return 4e-3;
    case GgmlType::Q8_0: return 0.01;
    case GgmlType::Q6_K: return 0.026;
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q5_K: return 0.06;
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q4_K: case GgmlType::IQ4_NL: case GgmlType::IQ4_XS: return 0.13;
    case GgmlType::MXFP4: return 0.17;
    case GgmlType::Q3_K: return 0.22;
    case GgmlType::Q2_K: return 0.4;
    default: return 0.0;
  }
}

void expect_close(const gguf::File& in, const gguf::File& out) {
  ASSERT_EQ(in.tensors().size(), out.tensors().size());
  for (const auto& t : in.tensors()) {
    const auto* q = out.tensor(t.name);
    ASSERT_NE(q, nullptr) << t.name;
    EXPECT_EQ(q->shape, t.shape) << t.name;
    const double err = rel_rms(dequantize(t), dequantize(*q));
    EXPECT_LE(err, bound(q->type)) << t.name << " as " << ggml_type_name(q->type);
  }
}

TEST(QuantizeCli, Stories260KQ8_0CopiesMetadataAndFallsBack) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto out = test::temp_dir() / "q8.gguf";
  const auto r = quantize(model, out, "q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[  48/48]"), std::string::npos) << "per-tensor progress";
  auto in = gguf::File::open(model.string());
  auto q = gguf::File::open(out.string());
  for (const auto& kv : in->metadata()) {
    if (kv.key == "general.file_type" || kv.key == "general.quantization_version") continue;
    const auto* v = q->find(kv.key);
    ASSERT_NE(v, nullptr) << kv.key;
    EXPECT_EQ(gguf::to_string(*v, 1 << 20), gguf::to_string(kv.value, 1 << 20)) << kv.key;
  }
  EXPECT_EQ(q->get_int("general.file_type"), 7);  // LLAMA_FTYPE_MOSTLY_Q8_0
  for (const auto& t : q->tensors()) {
    if (t.shape.size() == 1) EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    // ffn_down rows are 172 long: not a multiple of 32, so F16; every other matrix row is 64.
    else if (t.name.find("ffn_down") != std::string::npos) EXPECT_EQ(t.type, GgmlType::F16) << t.name;
    else EXPECT_EQ(t.type, GgmlType::Q8_0) << t.name;
  }
  expect_close(*in, *q);
}

TEST(QuantizeCli, Stories260KQ4_K_MMix) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto out = test::temp_dir() / "q4km.gguf";
  const auto r = quantize(model, out, "q4_k_m");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto in = gguf::File::open(model.string());
  auto q = gguf::File::open(out.string());
  EXPECT_EQ(q->get_int("general.file_type"), 15);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  // 5 layers: the first and last (n/8 rounded up to 1) and every third after the first: 0, 3, 4.
  // Rows of 64 cannot hold 256-blocks: Q4_K -> IQ4_NL and Q6_K -> Q8_0; rows of 172 -> F16.
  const std::map<std::string, GgmlType> expect = {
      {"token_embd.weight", GgmlType::IQ4_NL},     {"output.weight", GgmlType::Q8_0},
      {"blk.0.attn_v.weight", GgmlType::Q8_0},     {"blk.1.attn_v.weight", GgmlType::IQ4_NL},
      {"blk.2.attn_v.weight", GgmlType::IQ4_NL},   {"blk.3.attn_v.weight", GgmlType::Q8_0},
      {"blk.4.attn_v.weight", GgmlType::Q8_0},     {"blk.2.attn_q.weight", GgmlType::IQ4_NL},
      {"blk.2.ffn_down.weight", GgmlType::F16},    {"blk.2.ffn_up.weight", GgmlType::IQ4_NL},
      {"blk.2.attn_norm.weight", GgmlType::F32},
  };
  for (const auto& [name, type] : expect) {
    ASSERT_NE(q->tensor(name), nullptr) << name;
    EXPECT_EQ(q->tensor(name)->type, type) << name << " is " << ggml_type_name(q->tensor(name)->type);
  }
  expect_close(*in, *q);
}

// Every TYPE on a model with 256-multiple rows (synth tiny in F32), so the K-quants are used as such.
TEST(QuantizeCli, EveryTypeOnSynthTiny) {
  ROCFORGE_REQUIRE_FIXTURE(vocab, "models/stories260K/stories260K.gguf");
  const auto dir = test::temp_dir();
  const auto src = dir / "tiny-f32.gguf";
  const auto s = test::run_rocforge({"synth", "--preset", "tiny", "--type", "f32", "--vocab", vocab.string(), "-o", src.string()}, dir);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto in = gguf::File::open(src.string());
  const std::map<std::string, std::pair<GgmlType, int>> types = {
      {"q4_0", {GgmlType::Q4_0, 2}},   {"q4_1", {GgmlType::Q4_1, 3}},     {"q5_0", {GgmlType::Q5_0, 8}},
      {"q5_1", {GgmlType::Q5_1, 9}},   {"q8_0", {GgmlType::Q8_0, 7}},     {"q2_k", {GgmlType::Q2_K, 10}},
      {"q3_k", {GgmlType::Q3_K, 11}},  {"q4_k", {GgmlType::Q4_K, 14}},    {"q5_k", {GgmlType::Q5_K, 16}},
      {"q6_k", {GgmlType::Q6_K, 18}},  {"iq4_nl", {GgmlType::IQ4_NL, 25}}, {"iq4_xs", {GgmlType::IQ4_XS, 30}},
      {"mxfp4", {GgmlType::MXFP4, 38}}, {"f16", {GgmlType::F16, 1}},      {"bf16", {GgmlType::BF16, 32}},
      {"q4_k_m", {GgmlType::Q4_K, 15}}, {"q5_k_m", {GgmlType::Q5_K, 17}}, {"q3_k_m", {GgmlType::Q3_K, 12}},
      {"q3_k_l", {GgmlType::Q3_K, 13}},
  };
  for (const auto& [name, want] : types) {
    SCOPED_TRACE(name);
    const auto out = dir / (name + ".gguf");
    const auto r = quantize(src, out, name, {"-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto q = gguf::File::open(out.string());
    EXPECT_EQ(q->get_int("general.file_type"), want.second);
    EXPECT_EQ(q->tensor("blk.0.attn_q.weight")->type, want.first);
    EXPECT_EQ(q->tensor("blk.1.ffn_norm.weight")->type, GgmlType::F32);
    if (name.ends_with("_m") || name.ends_with("_l")) {
      EXPECT_EQ(q->tensor("output.weight")->type, GgmlType::Q6_K);
    }
    expect_close(*in, *q);
    std::filesystem::remove(out);
  }
}

TEST(QuantizeCli, DeterministicAcrossThreadCountsAndIdempotent) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = test::temp_dir();
  ASSERT_EQ(quantize(model, dir / "a.gguf", "q4_0", {"--threads", "1"}).exit_code, 0);
  ASSERT_EQ(quantize(model, dir / "b.gguf", "q4_0", {"--threads", "2"}).exit_code, 0);
  EXPECT_EQ(test::slurp(dir / "a.gguf"), test::slurp(dir / "b.gguf"));
  // Re-quantizing to the same type copies those tensors' bytes instead of rounding twice.
  ASSERT_EQ(quantize(dir / "a.gguf", dir / "c.gguf", "q4_0").exit_code, 0);
  auto a = gguf::File::open((dir / "a.gguf").string());
  auto c = gguf::File::open((dir / "c.gguf").string());
  for (const auto& t : a->tensors()) {
    const auto* u = c->tensor(t.name);
    ASSERT_TRUE(u && u->n_bytes == t.n_bytes && u->type == t.type) << t.name;
    EXPECT_EQ(std::memcmp(u->data, t.data, t.n_bytes), 0) << t.name;
  }
}

TEST(QuantizeCli, ErrorsNameTheProblem) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = test::temp_dir();
  auto r = quantize(model, dir / "x.gguf", "q7_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown type 'q7_0'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("q4_k_m"), std::string::npos) << "lists the valid types: " << r.err;
  r = quantize(dir / "missing.gguf", dir / "x.gguf", "q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.gguf"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
}

// The mix policy itself (src/tools/quant_plan.h), independent of any file.
TEST(QuantPlan, MoreBitsLayersAndFallbacks) {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < 32; ++l)
    if (tools::more_bits_layer(l, 32)) layers.push_back(l);
  EXPECT_EQ(layers, (std::vector<int64_t>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  EXPECT_EQ(tools::fallback_type(GgmlType::Q4_K, 4096), GgmlType::Q4_K);
  EXPECT_EQ(tools::fallback_type(GgmlType::Q4_K, 896), GgmlType::IQ4_NL);
  EXPECT_EQ(tools::fallback_type(GgmlType::Q5_K, 896), GgmlType::Q5_1);
  EXPECT_EQ(tools::fallback_type(GgmlType::Q6_K, 896), GgmlType::Q8_0);
  EXPECT_EQ(tools::fallback_type(GgmlType::Q6_K, 172), GgmlType::F16);
  EXPECT_EQ(tools::fallback_type(GgmlType::Q8_0, 172), GgmlType::F16);
  EXPECT_EQ(tools::layer_of("blk.17.attn_v.weight"), 17);
  EXPECT_EQ(tools::layer_of("token_embd.weight"), -1);
  EXPECT_EQ(tools::layer_of("blk.x.attn_v.weight"), -1);
  const auto plan = tools::parse_plan("Q4_K_M");
  ASSERT_TRUE(plan.has_value());
  const tools::ModelShape tied{16, false};
  EXPECT_EQ(tools::choose_type(*plan, tied, "token_embd.weight", {2048, 128256}), GgmlType::Q6_K);
  EXPECT_EQ(tools::choose_type(*plan, {16, true}, "token_embd.weight", {2048, 128256}), GgmlType::Q4_K);
  EXPECT_EQ(tools::choose_type(*plan, tied, "blk.0.ffn_gate_inp.weight", {2048, 8}), GgmlType::F32);
  EXPECT_EQ(tools::choose_type(*plan, tied, "blk.0.attn_q.bias", {2048}), GgmlType::F32);
  EXPECT_EQ(tools::choose_type(*plan, tied, "blk.0.ffn_down_exps.weight", {8192, 2048, 8}), GgmlType::Q6_K);
  EXPECT_EQ(tools::choose_type(*plan, tied, "blk.5.ffn_down.weight", {8192, 2048}), GgmlType::Q4_K);
  EXPECT_EQ(tools::choose_type(*plan, tied, "x.weight", {256, 4}, GgmlType::I32), GgmlType::I32);
  EXPECT_EQ(tools::choose_type(*plan, tied, "blk.5.attn_output.weight", {2048, 2048}), GgmlType::Q4_K);
  EXPECT_FALSE(tools::parse_plan("q4_k_l").has_value());
  // The 3-bit mixes: attn_v / ffn_down Q5_K in the more-bits layers, Q4_K (M) or Q5_K (L) elsewhere;
  // attn_output Q4_K / Q5_K; the rest Q3_K (a tied embedding Q6_K, as it is also the output).
  const auto m3 = tools::parse_plan("q3_k_m"), l3 = tools::parse_plan("Q3_K_L");
  ASSERT_TRUE(m3 && l3);
  EXPECT_EQ(m3->file_type, 12u);
  EXPECT_EQ(l3->file_type, 13u);
  const tools::ModelShape untied{32, true};
  for (const auto& [p, lo, out] : {std::tuple{*m3, GgmlType::Q4_K, GgmlType::Q4_K},
                                   std::tuple{*l3, GgmlType::Q5_K, GgmlType::Q5_K}}) {
    SCOPED_TRACE(p.name);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.0.attn_v.weight", {4096, 1024}), GgmlType::Q5_K);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.4.attn_v.weight", {4096, 1024}), lo);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.31.ffn_down.weight", {14336, 4096}), GgmlType::Q5_K);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.5.ffn_down.weight", {14336, 4096}), lo);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.5.attn_output.weight", {4096, 4096}), out);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.5.attn_q.weight", {4096, 4096}), GgmlType::Q3_K);
    EXPECT_EQ(tools::choose_type(p, untied, "blk.5.ffn_gate.weight", {4096, 14336}), GgmlType::Q3_K);
    EXPECT_EQ(tools::choose_type(p, untied, "token_embd.weight", {4096, 128256}), GgmlType::Q3_K);
    EXPECT_EQ(tools::choose_type(p, untied, "output.weight", {4096, 128256}), GgmlType::Q6_K);
    EXPECT_EQ(tools::choose_type(p, tied, "token_embd.weight", {2048, 128256}), GgmlType::Q6_K);
  }
}

}  // namespace
}  // namespace rocforge
