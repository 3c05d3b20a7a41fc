#include "core/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace neurod::log {
namespace {

// Our level names (spdlog says "warning" and "critical"); five wide for the text format.
constexpr std::array<std::string_view, 7> kLevelNames{"trace", "debug", "info", "warn", "error", "error", "off"};

std::string_view level_name(spdlog::level::level_enum l) {
  auto i = static_cast<std::size_t>(l);
  return i < kLevelNames.size() ? kLevelNames[i] : "info";
}

// %* : the level name padded to five characters (text format).
class PaddedLevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    auto name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
    for (auto n = name.size(); n < 5; ++n) dest.push_back(' ');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PaddedLevelFlag>(); }
};

// %q : the level name (json format).
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    auto name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<LevelFlag>(); }
};

// Appends s as the inside of a JSON string. Invalid UTF-8 becomes U+FFFD so that a
// stray byte in a message never makes the line unparseable.
void append_json_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  auto put = [&](std::string_view t) { dest.append(t.data(), t.data() + t.size()); };
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '"':
          put("\\\"");
          break;
        case '\\':
          put("\\\\");
          break;
        case '\n':
          put("\\n");
          break;
        case '\r':
          put("\\r");
          break;
        case '\t':
          put("\\t");
          break;
        case '\b':
          put("\\b");
          break;
        case '\f':
          put("\\f");
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
            dest.append(esc, esc + sizeof esc);
          } else {
            dest.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // Length and the valid range of the second byte (RFC 3629: no overlongs, no surrogates).
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len != 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
    for (std::size_t k = 2; ok && k < len; ++k) ok = p[i + k] >= 0x80 && p[i + k] <= 0xBF;
    if (ok) {
      dest.append(s.data() + i, s.data() + i + len);
      i += len;
    } else {
      put(kReplacement);
      ++i;
    }
  }
}

// %j : the message, JSON-escaped.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_json_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

// %k : the logger name, JSON-escaped.
class JsonLoggerFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_json_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonLoggerFlag>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(Format format) {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, std::string("\n"));
  f->add_flag<PaddedLevelFlag>('*').add_flag<LevelFlag>('q').add_flag<JsonMessageFlag>('j').add_flag<JsonLoggerFlag>(
      'k');
  if (format == Format::json)
    f->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%q","logger":"%k","msg":"%j"})");
  else
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %* %v");
  return f;
}

// Both loggers live for the whole process and write through one distributing sink whose
// target and formatter init() swaps; callers may keep access() references across init().
struct State {
  std::mutex mu;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sink;
  std::shared_ptr<spdlog::logger> main;
  std::shared_ptr<spdlog::logger> access;

  State() : sink(std::make_shared<spdlog::sinks::dist_sink_mt>()) {
    sink->set_sinks({std::make_shared<spdlog::sinks::stderr_sink_mt>()});
    sink->set_formatter(make_formatter(Format::text));
    main = std::make_shared<spdlog::logger>("neurod", sink);
    access = std::make_shared<spdlog::logger>("access", sink);
    for (auto* l : {&main, &access}) {
      (*l)->set_level(spdlog::level::info);
      spdlog::drop((*l)->name());
      spdlog::register_logger(*l);
    }
    spdlog::set_default_logger(main);
  }
};

State& state() {
  static State s;
  return s;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "info") return spdlog::level::info;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return std::nullopt;
}

}  // namespace

bool valid_level(std::string_view level) { return parse_level(level).has_value(); }

void init(std::string_view level, Format format) { init(level, format, nullptr); }

void init(std::string_view level, Format format, spdlog::sink_ptr sink) {
  auto lvl = parse_level(level);
  if (!lvl)
    throw std::invalid_argument("invalid log level '" + std::string(level) +
                                "' (expected trace, debug, info, warn, error or off)");
  auto& s = state();
  std::lock_guard lock(s.mu);
  s.sink->set_sinks({sink ? std::move(sink) : std::make_shared<spdlog::sinks::stderr_sink_mt>()});
  s.sink->set_formatter(make_formatter(format));  // after set_sinks: it is copied into each target
  s.main->set_level(*lvl);
  s.access->set_level(*lvl);
  // Someone may have replaced the default logger (tests); init() restores ours.
  if (spdlog::default_logger_raw() != s.main.get()) spdlog::set_default_logger(s.main);
}

spdlog::logger& access() { return *state().access; }

}  // namespace neurod::log
