// Shared by the tunnel tests (server_test, port_forward_test): pushes a deterministic
// byte stream through a WebSocket tunnel to an echo server and hashes both ways.
#pragma once

#include "http/ws_tunnel.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace neurod::tunneltest {

struct Fnv {
  std::uint64_t h = 1469598103934665603ull;
  void add(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(p[i]);
      h *= 1099511628211ull;
    }
  }
};

struct EchoResult {
  std::uint64_t sent_hash = 0;
  std::uint64_t got_hash = 0;
  std::uint64_t sent = 0;
  std::uint64_t got = 0;
};

// Opens the tunnel (throws neurod::Error when refused), writes `size` bytes of a seeded
// pseudo-random stream, half-closes, and reads the echo to its end.
inline EchoResult echo_through(const std::string& url, const std::string& target, const std::string& token,
                               std::uint64_t size, std::uint64_t seed = 1) {
  ::signal(SIGPIPE, SIG_IGN);  // a tunnel that ends early is a short count, not a dead test binary
  http::ClientOptions o;
  o.token = token;
  http::WebSocketTunnel tunnel(url, target, o);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
  std::thread pump([&] {
    tunnel.run(sv[1]);
    ::close(sv[1]);
  });
  EchoResult r;
  std::thread writer([&] {
    Fnv h;
    std::vector<char> buf(256 * 1024);
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (std::uint64_t left = size; left > 0;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      for (std::size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (std::size_t k = 0; k < 8 && i + k < n; ++k) buf[i + k] = static_cast<char>(x >> (8 * k));
      }
      h.add(buf.data(), n);
      std::size_t off = 0;
      while (off < n) {
        auto w = ::write(sv[0], buf.data() + off, n - off);
        if (w <= 0) break;
        off += std::size_t(w);
      }
      if (off < n) break;
      r.sent += n;
      left -= n;
    }
    r.sent_hash = h.h;
    ::shutdown(sv[0], SHUT_WR);
  });
  Fnv h;
  std::vector<char> buf(256 * 1024);
  for (;;) {
    auto n = ::read(sv[0], buf.data(), buf.size());
    if (n <= 0) break;
    h.add(buf.data(), std::size_t(n));
    r.got += std::uint64_t(n);
  }
  r.got_hash = h.h;
  writer.join();
  pump.join();
  ::close(sv[0]);
  return r;
}

}  // namespace neurod::tunneltest
