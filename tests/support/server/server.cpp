#include "support/server/server.hpp"


#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>


namespace neurod::test {

const char* backend_name(Backend b) { return b == Backend::sqlite ? "sqlite" : "postgres"; }

TestServer::TestServer(ServerSpec spec) {
  std::string db_url = "sqlite:neurod.db";
  if (spec.backend == Backend::postgres) {
    auto o = TestDatabase::default_options();
    o.pool_size = 1;
    database_ = std::make_unique<TestDatabase>(db::Dialect::postgresql, o);
    database_->close();  // the server opens its own pool
    db_url = database_->url();
  }
  yaml_ = "cluster_name: test\n"
          "data_dir: " + dir_.path().string() + "/data\n"
          "log:\n  level: warn\n"
          "http:\n  listen: 127.0.0.1:0\n  io_threads: 2\n  blocking_threads: 4\n  drain_timeout: 5s\n" + spec.http_yaml +
          "database:\n  url: \"" + db_url + "\"\n  pool_size: 4\n" + spec.extra_yaml;
  auto modules = app::compiled_modules();
  for (auto& m : spec.extra_modules) modules.push_back(std::move(m));
  auto cfg = config::load_string(yaml_, "test.yaml", app::section_specs(modules));
  app_ = std::make_unique<app::App>(std::move(cfg), std::move(modules));
  app_->start();
}

TestServer::~TestServer() {
  app_->stop(std::chrono::milliseconds(2000));
  app_.reset();
}

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect failed");
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(std::size_t(n));
  }
}

namespace {
// One read with a deadline: >0 bytes, 0 closed, -1 timeout/error.
long read_some(int fd, std::string& out, std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  if (left <= 0) return -1;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, int(left)) <= 0) return -1;
  char buf[8192];
  auto n = ::recv(fd, buf, sizeof buf, 0);
  if (n > 0) out.append(buf, std::size_t(n));
  return n < 0 ? 0 : n;  // a reset counts as closed
}
}  // namespace

std::string RawConnection::read_until_close(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  while (read_some(fd_, out, deadline) > 0) {
  }
  return out;
}

std::string RawConnection::read_until(std::string_view marker, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  while (out.find(marker) == std::string::npos && read_some(fd_, out, deadline) > 0) {
  }
  return out;
}

bool RawConnection::closed_within(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto n = read_some(fd_, pending_, deadline);
    if (n == 0) return true;
    if (n < 0) return false;
  }
}

}  // namespace neurod::test
