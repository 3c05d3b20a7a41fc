#include "modules/executor/port_connect.hpp"

#include "core/errors.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

namespace neurod::executor {

namespace {

constexpr int kConnectTimeoutMs = 5000;

int connect_now(const std::string& ip, std::uint16_t port, const std::string& job_id) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  if (ip.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) != 1)
      throw Error(errc::internal, "bad address " + ip + " for job " + job_id);
    family = AF_INET6;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) != 1)
      throw Error(errc::internal, "bad address " + ip + " for job " + job_id);
    len = sizeof(sockaddr_in);
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw Error(errc::unavailable, std::string("cannot create a socket: ") + std::strerror(errno));
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  int err = rc == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int n;
    while ((n = ::poll(&p, 1, kConnectTimeoutMs)) < 0 && errno == EINTR) {
    }
    if (n == 0) {
      ::close(fd);
      throw Error(errc::gateway_timeout, "port " + std::to_string(port) + " in job " + job_id +
                                             " did not answer within " + std::to_string(kConnectTimeoutMs / 1000) +
                                             " s")
          .with_code("port_timeout");
    }
    socklen_t elen = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
  }
  if (err != 0) {
    ::close(fd);
    if (err == ECONNREFUSED)
      throw Error(errc::bad_request, "nothing listens on port " + std::to_string(port) + " in job " + job_id)
          .with_code("port_not_listening");
    throw Error(errc::bad_gateway,
                "cannot connect to port " + std::to_string(port) + " in job " + job_id + ": " + std::strerror(err))
        .with_code("port_unreachable");
  }
  // Blocking again: the caller decides how it uses the socket.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

int connect_port(const std::string& ip, std::uint16_t port, const std::string& job_id) {
  return connect_now(ip, port, job_id);
}

std::optional<int> connect_port_in_netns(pid_t pid, std::uint16_t port, const std::string& job_id) {
  if (pid <= 0) return std::nullopt;
  int ns = ::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return std::nullopt;
  // setns changes only the calling thread, so a thread of its own enters the namespace
  // and ends there: no thread of neurod is left in a job's network.
  std::optional<int> result;
  std::exception_ptr error;
  std::thread t([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) return;  // EPERM: not allowed here
    try {
      result = connect_now("127.0.0.1", port, job_id);
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  ::close(ns);
  if (error) std::rethrow_exception(error);
  return result;
}

}  // namespace neurod::executor
