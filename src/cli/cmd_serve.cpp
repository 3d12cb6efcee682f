// rocforge serve - the OpenAI-compatible HTTP server (src/server).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <sys/prctl.h>
#include <thread>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "server/server.h"

namespace rocforge::cli {

int run_serve(int argc, char** argv) {
  CLI::App app{"OpenAI-compatible HTTP server with continuous batching", "rocforge serve"};
  EngineFlags ef;
  ef.opts.n_parallel = 4;
  server::ServerOptions so;
  int max_body_kib = 4096;
  add_engine_flags(app, ef, false);
  app.add_option("--host", so.host, "address to listen on (default 127.0.0.1: local only)");
  app.add_option("--port", so.port, "TCP port (0: any free port; the chosen one is printed)")->check(CLI::Range(0, 65535));
  app.add_option("--parallel,--np", ef.opts.n_parallel, "sequences decoded together (KV cache = ctx-size x parallel)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--api-key", so.api_key, "require 'Authorization: Bearer <key>' (default: $ROCFORGE_API_KEY)");
  app.add_option("--max-queue", so.max_queue, "requests that may wait for a slot; beyond it: 503 + Retry-After")
      ->check(CLI::Range(0, 100000));
  app.add_option("--chat-template", so.chat_template, "override the chat template: a built-in name or a Jinja file");
  app.add_option("--alias", so.model_name, "model id reported by /v1/models (default: the file name)");
  app.add_option("--timeout", so.timeout_s, "socket read/write timeout in seconds")->check(CLI::Range(1, 3600));
  app.add_option("--max-body-kib", max_body_kib, "request body size limit (KiB)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--http-threads", so.http_threads, "HTTP worker threads (default: parallel + max-queue + 8)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--kv-blocks", so.max_kv_blocks, "use at most this many KV blocks (testing preemption; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--chain-decode", so.chain_decode,
               "a lone stream runs 8 decode steps a GPU launch (1-5% faster; its tokens arrive in bursts)");
  bool die_with_parent = false;
  app.add_flag("--die-with-parent", die_with_parent, "exit when the parent process dies (test harnesses)");
  CLI11_PARSE(app, argc, argv);
  if (so.api_key.empty())
    if (const char* k = std::getenv("ROCFORGE_API_KEY")) so.api_key = k;
  so.engine = finish_engine_flags(ef);
  so.max_body_bytes = static_cast<size_t>(max_body_kib) * 1024;

  // Signals are handled by one thread with sigwait (no async-signal-safety worries); every other
  // thread inherits the mask set here, before any is started.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that went away must not kill the server
  // The kernel sends SIGTERM (handled below like Ctrl-C) when the parent dies, so a test runner
  // killed mid-test leaves no server behind.
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGTERM);

  if (so.api_key.empty() && so.host != "127.0.0.1" && so.host != "localhost" && so.host != "::1")
    std::fprintf(stderr, "rocforge serve: warning: listening on %s without --api-key: anyone who can reach it may use it\n",
                 so.host.c_str());
  server::Server srv(so);
  srv.start();
  std::fprintf(stderr, "rocforge serve: listening on http://%s:%d (loading %s)\n", so.host.c_str(), srv.port(),
               so.engine.model_path.c_str());
  std::fflush(stderr);
  std::thread([&srv, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "rocforge serve: signal %d, shutting down\n", sig);
    srv.stop();
  }).detach();

  if (!srv.wait_loaded()) {
    const std::string err = srv.load_error();
    srv.stop();
    throw Error("cannot load the model: " + err);
  }
  std::fprintf(stderr, "rocforge serve: ready (%d parallel sequences)\n", so.engine.n_parallel);
  std::fflush(stderr);
  srv.wait();
  srv.stop();  // waits for a stop() in progress on the signal thread
  return 0;
}

}  // namespace rocforge::cli
