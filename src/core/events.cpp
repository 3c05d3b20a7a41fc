#include "core/events.hpp"

#include <spdlog/spdlog.h>

namespace neurod::events {

std::size_t Bus::subscribe(std::string topic_prefix, Handler handler) {
  std::lock_guard lock(mu_);
  auto id = next_id_++;
  subs_.push_back({id, std::move(topic_prefix), std::move(handler)});
  return id;
}

void Bus::unsubscribe(std::size_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(subs_, [&](const Sub& s) { return s.id == id; });
}

void Bus::publish(const Event& event) {
  std::vector<Handler> targets;
  {
    std::lock_guard lock(mu_);
    ++published_;
    for (const auto& s : subs_)
      if (event.topic.compare(0, s.prefix.size(), s.prefix) == 0) targets.push_back(s.handler);
  }
  for (const auto& h : targets) {
    try {
      h(event);
    } catch (const std::exception& e) {
      spdlog::error("event bus: a subscriber of {} failed: {}", event.topic, e.what());
    }
  }
}

std::uint64_t Bus::published() const {
  std::lock_guard lock(mu_);
  return published_;
}

}  // namespace neurod::events
