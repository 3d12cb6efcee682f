#include "server/api.h"

#include <cmath>
#include <limits>
#include <random>

namespace rocforge::server {

using nlohmann::json;

ApiError bad_request(const std::string& message, const std::string& param) {
  return ApiError(400, "invalid_request_error", message, param);
}

json error_json(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse_body(const std::string& body) {
  // No exceptions: syntax errors, invalid UTF-8 in strings and number overflow all give
  // `discarded`, and nesting depth is bounded by the body size limit.
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw bad_request("request body is not valid JSON (or not valid UTF-8)");
  if (!j.is_object()) throw bad_request("request body must be a JSON object");
  return j;
}

namespace {

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double get_number(const json& body, const char* name, double lo, double hi, double def) {
  const json* v = field(body, name);
  if (!v) return def;
  if (!v->is_number()) throw bad_request(std::string("'") + name + "' must be a number", name);
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    throw bad_request(std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump(), name);
  return d;
}

int64_t get_int(const json& body, const char* name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = field(body, name);
  if (!v) return def;
  int64_t x;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) throw bad_request(std::string("'") + name + "' is too large", name);
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < -9e18 || d > 9e18)
      throw bad_request(std::string("'") + name + "' must be an integer", name);
    x = static_cast<int64_t>(d);
  } else {
    throw bad_request(std::string("'") + name + "' must be an integer", name);
  }
  if (x < lo || x > hi)
    throw bad_request(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), name);
  return x;
}

bool get_bool(const json& body, const char* name, bool def) {
  const json* v = field(body, name);
  if (!v) return def;
  if (!v->is_boolean()) throw bad_request(std::string("'") + name + "' must be a boolean", name);
  return v->get<bool>();
}

std::vector<std::string> get_stop(const json& body) {
  const json* v = field(body, "stop");
  std::vector<std::string> out;
  if (!v) return out;
  auto add = [&](const json& s) {
    if (!s.is_string()) throw bad_request("'stop' must be a string or an array of strings", "stop");
    const std::string& str = s.get_ref<const std::string&>();
    if (str.size() > 1024) throw bad_request("'stop' strings must be at most 1024 bytes", "stop");
    if (!str.empty()) out.push_back(str);
  };
  if (v->is_array()) {
    if (v->size() > 16) throw bad_request("'stop' may hold at most 16 strings", "stop");
    for (const auto& s : *v) add(s);
  } else {
    add(*v);
  }
  return out;
}

std::string message_content(const json& m, size_t i) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    // Content parts: only text parts can be served by a text model.
    std::string out;
    for (const auto& part : *it) {
      if (!part.is_object()) throw bad_request("content parts must be objects", param);
      auto type = part.find("type");
      if (type == part.end() || !type->is_string() || *type != "text")
        throw bad_request("only content parts of type 'text' are supported", param);
      auto text = part.find("text");
      if (text == part.end() || !text->is_string()) throw bad_request("a text content part needs a string 'text'", param);
      out += text->get<std::string>();
    }
    return out;
  }
  throw bad_request("message content must be a string or an array of content parts", param);
}

}  // namespace

ParsedRequest parse_generation_request(const json& body, Endpoint endpoint, int32_t n_vocab) {
  ParsedRequest r;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model"); m && !m->is_string()) throw bad_request("'model' must be a string", "model");

  if (endpoint == Endpoint::Chat) {
    const json* msgs = field(body, "messages");
    if (!msgs) throw bad_request("'messages' is required", "messages");
    if (!msgs->is_array() || msgs->empty()) throw bad_request("'messages' must be a non-empty array", "messages");
    for (size_t i = 0; i < msgs->size(); ++i) {
      const json& m = (*msgs)[i];
      const std::string param = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) throw bad_request("each message must be an object", param);
      auto role = m.find("role");
      if (role == m.end() || !role->is_string()) throw bad_request("each message needs a string 'role'", param + ".role");
      const std::string rs = role->get<std::string>();
      if (rs != "system" && rs != "developer" && rs != "user" && rs != "assistant" && rs != "tool")
        throw bad_request("unknown role '" + rs + "'", param + ".role");
      r.messages.push_back({rs == "developer" ? "system" : rs, message_content(m, i)});
    }
  } else {
    const json* p = field(body, "prompt");
    if (!p) {
      r.prompt_text = "";
    } else if (p->is_string()) {
      r.prompt_text = p->get<std::string>();
    } else if (p->is_array()) {
      if (p->empty()) throw bad_request("'prompt' must not be an empty array", "prompt");
      if ((*p)[0].is_string()) {
        if (p->size() != 1) throw bad_request("only one prompt per request is supported", "prompt");
        r.prompt_text = (*p)[0].get<std::string>();
      } else {
        r.prompt_is_tokens = true;
        for (const auto& t : *p) {
          if (!t.is_number_integer()) throw bad_request("'prompt' must be a string or an array of token ids", "prompt");
          const int64_t id = t.get<int64_t>();
          if (id < 0 || id >= n_vocab)
            throw bad_request("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                  std::to_string(n_vocab - 1) + ")", "prompt");
          r.prompt_tokens.push_back(static_cast<int32_t>(id));
        }
      }
    } else {
      throw bad_request("'prompt' must be a string or an array of token ids", "prompt");
    }
    if (get_bool(body, "echo", false)) throw bad_request("'echo' is not supported", "echo");
    if (get_int(body, "best_of", 1, 1, 1) != 1) throw bad_request("'best_of' must be 1", "best_of");
  }

  if (get_int(body, "n", 1, 1, 1) != 1) throw bad_request("'n' must be 1", "n");
  if (const json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    throw bad_request("'logprobs' is not supported", "logprobs");
  if (const json* t = field(body, "tools"); t && !(t->is_array() && t->empty()))
    throw bad_request("'tools' is not supported", "tools");

  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
    r.include_usage = get_bool(*so, "include_usage", false);
  }

  // OpenAI's defaults: temperature 1, top_p 1, no top-k / min-p, no penalties.
  GenParams& g = r.gen;
  constexpr int64_t kMaxTokens = 1 << 30;
  int64_t max_tokens = get_int(body, "max_tokens", 1, kMaxTokens, -1);
  max_tokens = get_int(body, "max_completion_tokens", 1, kMaxTokens, max_tokens);
  g.max_tokens = static_cast<int32_t>(max_tokens);
  g.sampling.temperature = static_cast<float>(get_number(body, "temperature", 0, 2, 1));
  g.sampling.top_p = static_cast<float>(get_number(body, "top_p", 0, 1, 1));
  if (g.sampling.top_p <= 0) {  // top_p 0 keeps only the most likely token: greedy
    g.sampling.top_p = 1;
    g.sampling.temperature = 0;
  }
  g.sampling.top_k = static_cast<int32_t>(get_int(body, "top_k", 0, std::numeric_limits<int32_t>::max(), 0));
  g.sampling.min_p = static_cast<float>(get_number(body, "min_p", 0, 1, 0));
  g.sampling.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", -2, 2, 0));
  g.sampling.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", -2, 2, 0));
  g.sampling.repeat_penalty = static_cast<float>(get_number(body, "repeat_penalty", 0.01, 10, 1));
  g.sampling.penalty_last_n = 64;
  if (const json* s = field(body, "seed")) {
    if (s->is_number_unsigned()) g.sampling.seed = s->get<uint64_t>();
    else g.sampling.seed = static_cast<uint64_t>(get_int(body, "seed", std::numeric_limits<int64_t>::min(),
                                                         std::numeric_limits<int64_t>::max(), 0));
  } else {
    g.sampling.seed = std::random_device{}();
  }
  g.stop = get_stop(body);
  g.ignore_eos = get_bool(body, "ignore_eos", false);
  return r;
}

json usage_json(const ResponseInfo& r) {
  return json{{"prompt_tokens", r.prompt_tokens},
              {"completion_tokens", r.completion_tokens},
              {"total_tokens", r.prompt_tokens + r.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

json completion_response(Endpoint ep, const ResponseInfo& r, const std::string& text, const std::string& finish_reason) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (ep == Endpoint::Chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  return json{{"id", r.id},
              {"object", ep == Endpoint::Chat ? "chat.completion" : "text_completion"},
              {"created", r.created},
              {"model", r.model},
              {"choices", json::array({choice})},
              {"usage", usage_json(r)}};
}

json stream_chunk(Endpoint ep, const ResponseInfo& r, const std::string& text, const std::string& finish_reason,
                  bool first) {
  json choice = {{"index", 0}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (ep == Endpoint::Chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  return json{{"id", r.id},
              {"object", ep == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", r.created},
              {"model", r.model},
              {"choices", json::array({choice})}};
}

json usage_chunk(Endpoint ep, const ResponseInfo& r) {
  return json{{"id", r.id},
              {"object", ep == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", r.created},
              {"model", r.model},
              {"choices", json::array()},
              {"usage", usage_json(r)}};
}

bool secure_equals(const std::string& presented, const std::string& expected) {
  // Every byte of `expected` is compared whatever the input; a length mismatch is folded into the
  // accumulator instead of returning early.
  volatile unsigned char acc = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    acc = acc | (p ^ static_cast<unsigned char>(expected[i]));
  }
  return acc == 0 && !expected.empty();
}

}  // namespace rocforge::server
