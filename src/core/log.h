// log.h - one-line diagnostics on stderr. Level from $ROCFORGE_LOG (error|warn|info|debug), default info.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace rocforge::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

Level level();
void set_level(Level l);
void write(Level l, std::string_view msg);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) { write(Level::Error, fmt::format(f, std::forward<Args>(a)...)); }
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) { if (level() >= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(a)...)); }
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) { if (level() >= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(a)...)); }
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) { if (level() >= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(a)...)); }

}  // namespace rocforge::log
