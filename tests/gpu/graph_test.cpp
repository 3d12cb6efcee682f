// A decode-like chain (rmsnorm -> int8 quantize -> matvec -> greedy sample) captured once as a graph
// and replayed on fresh inputs gives exactly what launching the kernels directly gives.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

TEST(GpuGraph, CapturedDecodeChainReplaysLikeDirectLaunches) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 515, cols = 4096;
  const auto t = GgmlType::Q4_K;
  const size_t rb = quant::row_bytes(t, cols);
  const auto wf = random_floats(rng, static_cast<size_t>(rows) * cols);
  std::vector<uint8_t> w(rb * rows);
  quant::quantize_rows(t, wf.data(), w.data(), rows, cols);
  auto dw = to_device(*gpu, w);
  auto dnorm = to_device(*gpu, random_floats(rng, cols, 0.5f, 1.5f));
  DeviceBuffer dx(*gpu, cols * 4), dxn(*gpu, cols * 4), dq(*gpu, api.q8_bytes(cols)), dy(*gpu, rows * 4),
      dtok(*gpu, 4), dws(*gpu, api.sample_workspace(1, rows));
  dws.zero();

  rf_stream s = nullptr;
  gpu->check(api.stream_create(&s), "stream");
  auto chain = [&](rf_stream st) {
    gpu->check(api.rmsnorm(dx.as<float>(), dnorm->as<float>(), dxn.as<float>(), cols, 1, 1e-5f, st), "rmsnorm");
    gpu->check(api.quantize_q8(dxn.as<float>(), cols, dq.get(), st), "quantize");
    gpu->check(api.matvec_q8(static_cast<uint32_t>(t), dw->get(), rb, dq.get(), dy.as<float>(), rows, cols, st), "mv");
    gpu->check(api.sample(dy.as<float>(), rows, 0.f, 0, 1.f, 0.f, 0.f, dtok.as<int32_t>(), dws.get(), dws.bytes(), st), "sample");
  };
  EXPECT_NE(api.graph_capture_begin(nullptr), 0);  // the default stream cannot be captured

  rf_graph g = nullptr;
  gpu->check(api.graph_capture_begin(s), "capture");
  chain(s);
  gpu->check(api.graph_capture_end(s, &g), "capture end");
  ASSERT_NE(g, nullptr);

  for (int round = 0; round < 3; ++round) {
    const auto x = random_floats(rng, cols, -2.f, 2.f);
    gpu->check(api.memcpy_h2d(dx.get(), x.data(), cols * 4, s), "upload");
    dy.poison();
    gpu->check(api.graph_launch(g, s), "graph launch");
    gpu->check(api.stream_sync(s), "sync");
    const auto y_graph = dy.download<float>(rows);
    const auto tok_graph = dtok.download<int32_t>(1)[0];

    dy.poison();
    chain(s);
    gpu->check(api.stream_sync(s), "sync");
    const auto y_direct = dy.download<float>(rows);
    EXPECT_EQ(y_graph, y_direct) << "round " << round;
    EXPECT_EQ(tok_graph, dtok.download<int32_t>(1)[0]) << "round " << round;
    // And the token is the argmax of the logits.
    int best = 0;
    for (int i = 1; i < rows; ++i)
      if (y_direct[i] > y_direct[best]) best = i;
    EXPECT_EQ(tok_graph, best);
  }
  gpu->check(api.graph_destroy(g), "graph destroy");
  gpu->check(api.stream_destroy(s), "stream destroy");
}

}  // namespace
}  // namespace rocforge::test
