// The in-process event bus (DESIGN §1: core). Modules publish facts ("job.status") and
// others subscribe by topic prefix (notifications, metering). Delivery is synchronous on
// the publisher's thread, after the fact is committed: a publisher writes its event
// into its own table in the same transaction as the change (the outbox), so a
// subscriber that must not miss anything can catch up from there by sequence number.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace neurod::events {

struct Event {
  std::string topic;        // "job.status"
  std::int64_t seq = 0;     // the publisher's outbox sequence (0: none)
  nlohmann::json data;
};

class Bus {
 public:
  using Handler = std::function<void(const Event&)>;
  // Handlers must be quick (hand work to their own thread) and must not publish.
  std::size_t subscribe(std::string topic_prefix, Handler handler);
  void unsubscribe(std::size_t id);
  // Calls every matching handler; one that throws is logged and the others still run.
  void publish(const Event& event);
  std::uint64_t published() const;

 private:
  struct Sub {
    std::size_t id;
    std::string prefix;
    Handler handler;
  };
  mutable std::mutex mu_;
  std::vector<Sub> subs_;
  std::size_t next_id_ = 1;
  std::uint64_t published_ = 0;
};

}  // namespace neurod::events
