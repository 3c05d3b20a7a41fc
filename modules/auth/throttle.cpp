#include "modules/auth/throttle.hpp"

#include <algorithm>

namespace neurod::auth {

std::optional<Duration> LoginThrottle::check(std::unordered_map<std::string, Failures>& map, const std::string& key,
                                             std::size_t max, Clock::time_point now) {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  auto& f = it->second;
  while (!f.empty() && now - f.front() >= window_) f.pop_front();
  if (f.size() < max) return std::nullopt;
  auto wait = std::chrono::duration_cast<Duration>(f.front() + window_ - now);
  return std::max(wait, Duration(1000));
}

std::string LoginThrottle::host_of(const std::string& address) {
  if (address.starts_with('[')) {
    auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  auto colon = address.rfind(':');
  // One colon: IPv4 or a name with a port. More: a bare IPv6 address, kept whole.
  if (colon != std::string::npos && address.find(':') == colon) return address.substr(0, colon);
  return address;
}

std::optional<Duration> LoginThrottle::blocked(const std::string& user, const std::string& address,
                                               Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto a = check(users_, user, max_user_, now);
  auto b = check(addresses_, host_of(address), max_address_, now);
  if (a && b) return std::max(*a, *b);
  return a ? a : b;
}

void LoginThrottle::failed(const std::string& user, const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  prune(now);
  auto add = [&](Failures& f, std::size_t max) {
    f.push_back(now);
    while (f.size() > max) f.pop_front();  // only the last `max` matter
  };
  add(users_[user], max_user_);
  add(addresses_[host_of(address)], max_address_);
}

void LoginThrottle::succeeded(const std::string& user) {
  std::lock_guard lock(mu_);
  users_.erase(user);
}

// Bounded memory under a spray of made-up user names: drop entries whose failures all
// aged out, at most once a minute.
void LoginThrottle::prune(Clock::time_point now) {
  if (now - last_prune_ < std::chrono::minutes(1) && users_.size() + addresses_.size() < 100000) return;
  last_prune_ = now;
  for (auto* map : {&users_, &addresses_})
    for (auto it = map->begin(); it != map->end();)
      it = (it->second.empty() || now - it->second.back() >= window_) ? map->erase(it) : std::next(it);
}

}  // namespace neurod::auth
