// Logging: spdlog behind a tiny facade so that format and level come from config.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace neurod::log {

enum class Format { text, json };

// level: trace|debug|info|warn|error|off. Throws std::invalid_argument on others.
// May be called again (tests, config reload): loggers and references to them stay valid.
void init(std::string_view level, Format format = Format::text);
// The same, writing to `sink` instead of stderr (tests capture output this way).
void init(std::string_view level, Format format, spdlog::sink_ptr sink);
bool valid_level(std::string_view level);

// The access log is a separate logger ("access") so it can be routed or silenced.
spdlog::logger& access();

}  // namespace neurod::log

namespace neurod {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;
}  // namespace neurod
