// rocforge/error.h - the one exception type rocforge throws for bad input or failed resources.
#pragma once

#include <stdexcept>
#include <string>

namespace rocforge {

// Every user-facing failure (bad file, bad parameter, out of memory on a device) is an Error whose
// message names what is wrong: the file, the field, the byte offset or the parameter.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace rocforge
