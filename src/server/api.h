// api.h - the OpenAI wire format: request bodies -> validated generation requests, and results ->
// response / stream-chunk JSON. Everything that can be wrong in a request becomes an ApiError with
// the HTTP status and OpenAI error type to send back.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "rocforge/chat_template.h"
#include "server/request.h"

namespace rocforge {
class Tokenizer;
}

namespace rocforge::server {

struct ApiError : std::runtime_error {
  int status;
  std::string type;   // invalid_request_error | authentication_error | not_found_error | server_error
  std::string param;  // offending field, "" if none
  std::string code;   // e.g. context_length_exceeded, "" if none
  ApiError(int status, std::string type, const std::string& message, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
};
// 400 invalid_request_error.
ApiError bad_request(const std::string& message, const std::string& param = "");

// {"error": {"message", "type", "param", "code"}}
nlohmann::json error_json(const ApiError& e);

// Parses a request body: must be a JSON object (any syntax error, invalid UTF-8 -> 400).
nlohmann::json parse_body(const std::string& body);

enum class Endpoint { Chat, Completion };

// A validated /v1/chat/completions or /v1/completions request.
struct ParsedRequest {
  Endpoint endpoint = Endpoint::Completion;
  std::vector<ChatMessage> messages;   // chat
  std::string prompt_text;             // completion (when given as text)
  std::vector<int32_t> prompt_tokens;  // completion given as token ids
  bool prompt_is_tokens = false;
  GenParams gen;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
};

// Throws ApiError (400) on a missing/ill-typed/out-of-range field. n_vocab bounds token ids.
ParsedRequest parse_generation_request(const nlohmann::json& body, Endpoint endpoint, int32_t n_vocab);

// Response bodies. `id` is e.g. "chatcmpl-..."; `created` in Unix seconds.
struct ResponseInfo {
  std::string id, model;
  int64_t created = 0;
  int32_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
nlohmann::json usage_json(const ResponseInfo& r);
nlohmann::json completion_response(Endpoint ep, const ResponseInfo& r, const std::string& text,
                                   const std::string& finish_reason);
// One streamed chunk: `text` (may be empty) and finish_reason ("" while running). For chat, the
// first chunk carries the role.
nlohmann::json stream_chunk(Endpoint ep, const ResponseInfo& r, const std::string& text, const std::string& finish_reason,
                            bool first);
// The final usage-only chunk (stream_options.include_usage).
nlohmann::json usage_chunk(Endpoint ep, const ResponseInfo& r);

// Serializes with invalid UTF-8 replaced (never throws on odd bytes).
std::string dump(const nlohmann::json& j);

// Constant-time comparison of a presented secret with the expected one (length leaks only
// through the loop bound, which is the expected key's length).
bool secure_equals(const std::string& presented, const std::string& expected);

}  // namespace rocforge::server
