// Login throttling: at most N failed logins per user and M per client address within a
// sliding window; past that, logins are refused (429) until the oldest failure ages
// out, without checking the password (so a throttled guess learns nothing).
#pragma once

#include "core/units.hpp"

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace neurod::auth {

class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  LoginThrottle(std::size_t max_per_user, std::size_t max_per_address, Duration window)
      : max_user_(max_per_user), max_address_(max_per_address), window_(window) {}

  // `address` may carry a port ("10.0.0.1:5123", "[::1]:5123"): only the host counts, or
  // every new connection would start with a clean slate.
  // How long to wait before trying again, or nullopt to go ahead.
  std::optional<Duration> blocked(const std::string& user, const std::string& address,
                                  Clock::time_point now = Clock::now());
  void failed(const std::string& user, const std::string& address, Clock::time_point now = Clock::now());
  void succeeded(const std::string& user);

 private:
  using Failures = std::deque<Clock::time_point>;
  std::optional<Duration> check(std::unordered_map<std::string, Failures>& map, const std::string& key, std::size_t max,
                                Clock::time_point now);
  void prune(Clock::time_point now);
  static std::string host_of(const std::string& address);

  std::size_t max_user_;
  std::size_t max_address_;
  Duration window_;
  std::mutex mu_;
  std::unordered_map<std::string, Failures> users_;
  std::unordered_map<std::string, Failures> addresses_;
  Clock::time_point last_prune_{};
};

}  // namespace neurod::auth
