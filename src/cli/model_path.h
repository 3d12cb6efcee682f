#pragma once
#include <string>

namespace rocforge::cli {
// $ROCFORGE_MODEL, else <test data>/models/stories260K/stories260K.gguf, else
// ~/.cache/rocforge/stories260K.gguf, else a verified download of it. Throws with advice offline.
std::string default_model_path();
}  // namespace rocforge::cli
