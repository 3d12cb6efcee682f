// tokenizer_bench.cpp - single-thread tokenizer throughput on ~1 MB of English text.
//
// Usage: tokenizer_bench [VOCAB.gguf] [TEXT_FILE...]
//   VOCAB defaults to <shared>/vocab/ggml-vocab-llama-bpe.gguf (the Llama 3 tokenizer; <shared> is
//   $ROCFORGE_TEST_DATA or ../shared beside the repo). Without TEXT_FILEs it reads the English
//   license texts in /usr/share/common-licenses (GPL, GFDL, Apache, ...) and repeats them to 1 MiB.
// Prints MB/s and seconds per MB for encode (and decode), best of 5 runs, wall and thread CPU time.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"

namespace {

double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::filesystem::path vocab;
    if (argc > 1) {
      vocab = argv[1];
    } else {
      const char* env = std::getenv("ROCFORGE_TEST_DATA");
      vocab = std::filesystem::path(env ? env : ROCFORGE_DEFAULT_TEST_DATA) / "vocab/ggml-vocab-llama-bpe.gguf";
    }
    std::string corpus;
    if (argc > 2) {
      for (int i = 2; i < argc; ++i) corpus += read_file(argv[i]);
    } else {
      const char* names[] = {"GPL-3", "GPL-2", "LGPL-3", "LGPL-2.1", "GFDL-1.3", "GFDL-1.2", "Apache-2.0", "Artistic", "MPL-2.0"};
      for (const char* n : names) corpus += read_file(std::filesystem::path("/usr/share/common-licenses") / n);
    }
    if (corpus.empty()) {
      std::fprintf(stderr, "tokenizer_bench: no text (pass TEXT_FILEs)\n");
      return 1;
    }
    const size_t target = 1 << 20;
    const size_t unique = corpus.size();
    std::string text;
    while (text.size() < target) text += corpus;
    text.resize(target);

    const double t_load = wall_seconds();
    const auto f = rocforge::gguf::File::open(vocab.string());
    const auto tok = rocforge::Tokenizer::from_gguf(*f);
    const double load_s = wall_seconds() - t_load;

    double best_wall = 1e30, best_cpu = 1e30, best_dec = 1e30;
    size_t n_tokens = 0;
    for (int run = 0; run < 5; ++run) {
      const double w0 = wall_seconds(), c0 = thread_seconds();
      const auto ids = tok->encode(text, false);
      best_wall = std::min(best_wall, wall_seconds() - w0);
      best_cpu = std::min(best_cpu, thread_seconds() - c0);
      n_tokens = ids.size();
      const double d0 = thread_seconds();
      const std::string back = tok->decode(ids);
      best_dec = std::min(best_dec, thread_seconds() - d0);
      if (back != text) {
        std::fprintf(stderr, "tokenizer_bench: decode(encode(text)) != text\n");
        return 1;
      }
    }
    const double mb = static_cast<double>(text.size()) / 1e6;
    std::printf("vocab: %s (%s, pre=%s, %d tokens), load %.3f s\n", vocab.filename().string().c_str(),
                tok->model().c_str(), tok->pre().c_str(), tok->n_vocab(), load_s);
    std::printf("text: %zu bytes (%zu unique), %zu tokens (%.2f bytes/token)\n", text.size(), unique, n_tokens,
                static_cast<double>(text.size()) / static_cast<double>(n_tokens));
    std::printf("encode: %.3f s wall, %.3f s thread CPU -> %.2f MB/s (%.3f s per MB, CPU time)\n", best_wall, best_cpu,
                mb / best_cpu, best_cpu / mb);
    std::printf("decode: %.4f s thread CPU -> %.1f MB/s\n", best_dec, mb / best_dec);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
}
