#include "core/ids.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

TEST_SUITE("ids") {
  TEST_CASE("random_hex has two lowercase hex chars per byte") {
    CHECK(neurod::random_hex(0) == "");
    for (std::size_t n : {1u, 8u, 16u, 32u, 1000u}) {
      auto s = neurod::random_hex(n);
      CHECK(s.size() == 2 * n);
      CHECK(is_lower_hex(s));
    }
  }

  TEST_CASE("random_hex uses every nibble value") {
    // 4000 random hex chars miss one of 16 digits with probability ~16*(15/16)^4000.
    auto s = neurod::random_hex(2000);
    CHECK(std::set<char>(s.begin(), s.end()).size() == 16);
  }

  TEST_CASE("new_id is prefix dash 24 hex") {
    for (const char* prefix : {"job", "user", "tok", ""}) {
      auto id = neurod::new_id(prefix);
      const std::string p = std::string(prefix) + "-";
      CAPTURE(id);
      CHECK(id.starts_with(p));
      CHECK(id.size() == p.size() + 24);
      CHECK(is_lower_hex(std::string_view(id).substr(p.size())));
    }
  }

  TEST_CASE("new_request_id is 16 hex") {
    auto id = neurod::new_request_id();
    CHECK(id.size() == 16);
    CHECK(is_lower_hex(id));
  }

  TEST_CASE("ids do not repeat across threads") {
    std::mutex mu;
    std::set<std::string> ids;
    std::vector<std::thread> threads;
    constexpr int kThreads = 8, kEach = 5000;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        std::vector<std::string> mine;
        for (int i = 0; i < kEach; ++i) mine.push_back(neurod::new_request_id());
        std::lock_guard lock(mu);
        ids.insert(mine.begin(), mine.end());
      });
    for (auto& t : threads) t.join();
    CHECK(ids.size() == kThreads * kEach);
  }
}
