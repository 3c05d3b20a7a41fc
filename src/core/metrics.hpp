// A small metrics registry rendered in the Prometheus text exposition format 0.0.4.
// Families are created once (usually at module construction) and then updated
// lock-free on hot paths: a labelled child is looked up once and kept.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace neurod::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // Counters only go up: a negative or NaN increment throws std::invalid_argument.
  void inc(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v);
  void inc(double v = 1.0);
  void dec(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // Upper bounds, strictly increasing and not NaN; a trailing +Inf is implied (and
  // dropped if given). Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum;
    std::uint64_t count;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  // Per-bucket (not cumulative) counts, one per bound + +Inf. The count is their total,
  // so a scrape racing with observe() still sees the +Inf bucket equal to _count.
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

namespace detail {
// Validates label names ([a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed, no duplicates,
// "le" reserved for histograms) and returns the labels sorted by name, so that
// {a,b} and {b,a} are the same child. Throws std::invalid_argument.
Labels canonical_labels(const Labels& labels, bool histogram);
}  // namespace detail

// A family: one metric name, help, type, and children by label values.
template <class T>
class Family {
 public:
  // Returns the child for these label values (created on first use). Keep the reference.
  // Throws std::invalid_argument on invalid label names.
  T& with(const Labels& labels);
  // Internal: used by Registry to render.
  template <class F>
  void for_each(F&& f) const;

 private:
  friend class Registry;
  explicit Family(std::function<std::unique_ptr<T>()> make) : make_(std::move(make)) {}
  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_;
};

std::vector<double> default_latency_buckets();  // seconds: 0.0005 .. 10

class Registry {
 public:
  using Samples = std::vector<std::pair<Labels, double>>;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* (std::invalid_argument otherwise); counter
  // names must end in "_total" (std::invalid_argument). Registering a name twice, or a
  // name that collides with a histogram's _bucket/_sum/_count series, throws std::logic_error.
  Family<Counter>& counter(const std::string& name, const std::string& help);
  Family<Gauge>& gauge(const std::string& name, const std::string& help);
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<double> bounds = default_latency_buckets());
  // A gauge computed when scraped (process RSS, pool usage). The callback returns
  // (labels, value) samples. It runs under the registry lock: it must not call back
  // into the registry. If it throws, the family renders with no samples.
  void callback_gauge(const std::string& name, const std::string& help, std::function<Samples()> sample);
  // The same for a monotonic value kept elsewhere (CPU seconds, bytes read): TYPE counter.
  void callback_counter(const std::string& name, const std::string& help, std::function<Samples()> sample);
  // Renders every family in the text format; families sorted by name.
  std::string render() const;

 private:
  struct Entry;
  Entry& add(const std::string& name, std::unique_ptr<Entry> entry);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

// Registers process_resident_memory_bytes, process_virtual_memory_bytes,
// process_cpu_seconds_total, process_open_fds, process_max_fds and
// process_start_time_seconds, read from /proc/self at scrape time.
void register_process_metrics(Registry& registry);

// --- template implementation ---
template <class T>
T& Family<T>::with(const Labels& labels) {
  std::lock_guard lock(mu_);
  auto it = children_.find(labels);
  if (it != children_.end()) return *it->second;
  Labels key = detail::canonical_labels(labels, std::is_same_v<T, Histogram>);
  it = children_.find(key);
  if (it == children_.end()) it = children_.emplace(std::move(key), make_()).first;
  return *it->second;
}

template <class T>
template <class F>
void Family<T>::for_each(F&& f) const {
  std::lock_guard lock(mu_);
  for (const auto& [labels, child] : children_) f(labels, *child);
}

}  // namespace neurod::metrics
