#include "cli/commands.h"

#include <iterator>

namespace rocforge::cli {
namespace {

// Add new subcommands here (one line each) and declare them in commands.h.
const Command kCommands[] = {
    {"run", "generate text (streams tokens; --chat, -i for a chat loop)", run_run},
    {"info", "print a GGUF file's metadata and tensors", run_info},
    {"devices", "list the GPUs a backend finds (the N of --device gpu:N), or why none", run_devices},
    {"bench", "prompt (ppN) and generation (tgN) tokens/s, llama-bench style", run_bench},
    {"perplexity", "perplexity on a text file (non-overlapping chunks, second half scored)", run_perplexity},
    {"quantize", "re-encode a GGUF model's weights (q4_k_m, q8_0, f16, ...)", run_quantize},
    {"synth", "write a random-weight model of a real shape with a real tokenizer", run_synth},
    {"logits", "top next-token logits after a prompt (engine comparisons)", run_logits},
    {"tokenize", "text -> token ids with a model's tokenizer", run_tokenize},
    {"detokenize", "token ids -> text with a model's tokenizer", run_detokenize},
    {"serve", "OpenAI-compatible HTTP server (continuous batching, paged KV, prefix cache)", run_serve},
    {"bench-serve", "load-test the HTTP server: tokens/s, TTFT, inter-token latency at several concurrencies", run_bench_serve},
};

}  // namespace

const Command* CommandList::begin() const { return std::begin(kCommands); }
const Command* CommandList::end() const { return std::end(kCommands); }
CommandList commands() { return {}; }
const char* version_string() { return "0.1.0"; }

}  // namespace rocforge::cli
