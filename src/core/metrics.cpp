#include "core/metrics.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <variant>

namespace neurod::metrics {
namespace {

// std::atomic<double>::fetch_add is C++20 but not lock-free everywhere; a CAS loop is.
void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

bool is_alpha_(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool valid_metric_name(std::string_view s) {
  if (s.empty() || !(is_alpha_(s[0]) || s[0] == ':')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alpha_(c) || is_digit(c) || c == ':'; });
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || !is_alpha_(s[0]) || s.starts_with("__")) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alpha_(c) || is_digit(c); });
}

// Prometheus parses sample values with Go's ParseFloat: integers are written without an
// exponent (up to 2^63, where doubles stop being exact anyway), everything else in the
// shortest form that reads back to the same double, %g-style like Go's client
// ("0.0005", "1e-05", "1.5e+06").
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 9.2e18) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    out.append(buf, end);
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, end);
  }
}

void append_escaped(std::string& out, std::string_view s, bool quotes) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quotes) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default:
        out += c;
    }
  }
}

// name{a="x",b="y",le="0.5"} value\n
void append_sample(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels,
                   const std::pair<std::string, std::string>* extra, double value) {
  out += name;
  out += suffix;
  if (!labels.empty() || extra) {
    out += '{';
    bool first = true;
    auto one = [&](const std::string& k, const std::string& v) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      append_escaped(out, v, true);
      out += '"';
    };
    for (const auto& [k, v] : labels) one(k, v);
    if (extra) one(extra->first, extra->second);
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

std::string number_string(double v) {
  std::string s;
  append_number(s, v);
  return s;
}

using Callback = std::function<Registry::Samples()>;

}  // namespace

namespace detail {
Labels canonical_labels(const Labels& labels, bool histogram) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& name = sorted[i].first;
    if (!valid_label_name(name)) throw std::invalid_argument("invalid metric label name '" + name + "'");
    if (histogram && name == "le") throw std::invalid_argument("label 'le' is reserved for histogram buckets");
    if (i > 0 && sorted[i - 1].first == name) throw std::invalid_argument("duplicate metric label '" + name + "'");
  }
  return sorted;
}
}  // namespace detail

void Counter::inc(double v) {
  if (!(v >= 0)) throw std::invalid_argument("a counter cannot decrease");
  atomic_add(value_, v);
}
double Counter::value() const { return value_.load(std::memory_order_relaxed); }

void Gauge::set(double v) { value_.store(v, std::memory_order_relaxed); }
void Gauge::inc(double v) { atomic_add(value_, v); }
void Gauge::dec(double v) { atomic_add(value_, -v); }
double Gauge::value() const { return value_.load(std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (std::isnan(bounds_[i])) throw std::invalid_argument("histogram bound is NaN");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i]))
      throw std::invalid_argument("histogram bounds must be strictly increasing");
  }
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // Buckets are "less than or equal"; NaN lands in +Inf only, as in the Go client.
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  if (std::isnan(v)) i = bounds_.size();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s{bounds_, {}, sum_.load(std::memory_order_relaxed), 0};
  s.cumulative.reserve(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    s.count += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(s.count);
  }
  return s;
}

std::vector<double> default_latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

struct Registry::Entry {
  std::string help;
  std::string_view type;  // "counter" | "gauge" | "histogram"
  std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>, std::unique_ptr<Family<Histogram>>,
               Callback>
      impl;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::add(const std::string& name, std::unique_ptr<Entry> entry) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name '" + name + "'");
  if (entry->type == "counter" && !name.ends_with("_total"))
    throw std::invalid_argument("counter name '" + name + "' must end in _total");
  std::lock_guard lock(mu_);
  // A histogram also owns name_bucket, name_sum and name_count: no family may render
  // the same series name twice.
  auto series_of = [](const std::string& n, const Entry& e) {
    std::vector<std::string> s{n};
    if (std::holds_alternative<std::unique_ptr<Family<Histogram>>>(e.impl))
      s.insert(s.end(), {n + "_bucket", n + "_sum", n + "_count"});
    return s;
  };
  std::set<std::string> taken;
  for (const auto& [n, e] : entries_)
    for (auto& s : series_of(n, *e)) taken.insert(std::move(s));
  for (const auto& s : series_of(name, *entry))
    if (taken.contains(s)) throw std::logic_error("metric '" + s + "' is already registered");
  return *entries_.emplace(name, std::move(entry)).first->second;
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help) {
  auto family = std::unique_ptr<Family<Counter>>(new Family<Counter>([] { return std::make_unique<Counter>(); }));
  auto& ref = *family;
  add(name, std::make_unique<Entry>(Entry{help, "counter", std::move(family)}));
  return ref;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help) {
  auto family = std::unique_ptr<Family<Gauge>>(new Family<Gauge>([] { return std::make_unique<Gauge>(); }));
  auto& ref = *family;
  add(name, std::make_unique<Entry>(Entry{help, "gauge", std::move(family)}));
  return ref;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  Histogram probe(bounds);  // validate now, not on the first with()
  auto family = std::unique_ptr<Family<Histogram>>(
      new Family<Histogram>([b = std::move(bounds)] { return std::make_unique<Histogram>(b); }));
  auto& ref = *family;
  add(name, std::make_unique<Entry>(Entry{help, "histogram", std::move(family)}));
  return ref;
}

void Registry::callback_gauge(const std::string& name, const std::string& help, std::function<Samples()> sample) {
  if (!sample) throw std::invalid_argument("callback_gauge '" + name + "' without a callback");
  add(name, std::make_unique<Entry>(Entry{help, "gauge", std::move(sample)}));
}

void Registry::callback_counter(const std::string& name, const std::string& help, std::function<Samples()> sample) {
  if (!sample) throw std::invalid_argument("callback_counter '" + name + "' without a callback");
  add(name, std::make_unique<Entry>(Entry{help, "counter", std::move(sample)}));
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, entry] : entries_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, entry->help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += entry->type;
    out += '\n';
    std::visit(
        [&, &name = name](const auto& impl) {
          using I = std::decay_t<decltype(impl)>;
          if constexpr (std::is_same_v<I, Callback>) {
            Samples samples;
            try {
              samples = impl();
            } catch (const std::exception& e) {
              spdlog::warn("metrics: callback for {} failed: {}", name, e.what());
              return;
            }
            std::set<Labels> seen;
            for (auto& [labels, value] : samples) {
              Labels key;
              try {
                key = detail::canonical_labels(labels, false);
              } catch (const std::exception& e) {
                spdlog::warn("metrics: callback for {} returned bad labels: {}", name, e.what());
                continue;
              }
              if (seen.insert(key).second) append_sample(out, name, "", key, nullptr, value);
            }
          } else if constexpr (std::is_same_v<I, std::unique_ptr<Family<Histogram>>>) {
            impl->for_each([&](const Labels& labels, const Histogram& h) {
              auto s = h.snapshot();
              std::pair<std::string, std::string> le{"le", ""};
              for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
                le.second = i < s.bounds.size() ? number_string(s.bounds[i]) : "+Inf";
                append_sample(out, name, "_bucket", labels, &le, static_cast<double>(s.cumulative[i]));
              }
              append_sample(out, name, "_sum", labels, nullptr, s.sum);
              append_sample(out, name, "_count", labels, nullptr, static_cast<double>(s.count));
            });
          } else {
            impl->for_each(
                [&](const Labels& labels, const auto& m) { append_sample(out, name, "", labels, nullptr, m.value()); });
          }
        },
        entry->impl);
  }
  return out;
}

// --- process metrics ---
namespace {

struct ProcStat {
  double cpu_seconds = 0;
  double start_ticks = 0;
  double vsize = 0;
  double rss_pages = 0;
};

std::optional<ProcStat> read_proc_stat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may contain spaces.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> f{std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
  // f[0] is field 3 (state); field N is f[N - 3].
  if (f.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  try {
    ProcStat s;
    s.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
    s.start_ticks = std::stod(f[22 - 3]) / ticks;
    s.vsize = std::stod(f[23 - 3]);
    s.rss_pages = std::stod(f[24 - 3]);
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

Registry::Samples one(std::optional<double> v) {
  if (!v) return {};
  return {{Labels{}, *v}};
}

}  // namespace

void register_process_metrics(Registry& registry) {
  registry.callback_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [] {
    auto s = read_proc_stat();
    return one(s ? std::optional(s->rss_pages * static_cast<double>(sysconf(_SC_PAGESIZE))) : std::nullopt);
  });
  registry.callback_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [] {
    auto s = read_proc_stat();
    return one(s ? std::optional(s->vsize) : std::nullopt);
  });
  registry.callback_counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", [] {
    auto s = read_proc_stat();
    return one(s ? std::optional(s->cpu_seconds) : std::nullopt);
  });
  registry.callback_gauge("process_open_fds", "Number of open file descriptors.", [] {
    std::error_code ec;
    double n = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
    // The directory iterator itself holds one descriptor while counting.
    return ec ? Registry::Samples{} : one(n - 1);
  });
  registry.callback_gauge("process_max_fds", "Maximum number of open file descriptors.", [] {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return Registry::Samples{};
    return one(rl.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity()
                                            : static_cast<double>(rl.rlim_cur));
  });
  registry.callback_gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", [] {
    auto s = read_proc_stat();
    auto boot = boot_time();
    return one(s && boot ? std::optional(*boot + s->start_ticks) : std::nullopt);
  });
}

}  // namespace neurod::metrics
