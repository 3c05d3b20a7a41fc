// Connecting to a port inside a job, for port-forward (Runner::connect): a TCP connect to
// 127.0.0.1 (the process runtime's jobs share the host network), inside a container's
// network namespace (docker: works for every network mode, the container's own loopback
// included), or to the container's address.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace neurod::executor {

// A connected TCP socket to ip:port (blocking connect, a few seconds at most). Throws
// Error(bad_request, "port_not_listening") "nothing listens on port N in job X" when
// refused, Error(gateway_timeout) when it does not answer.
int connect_port(const std::string& ip, std::uint16_t port, const std::string& job_id);

// The same to 127.0.0.1:port inside the network namespace of process `pid`, on a
// short-lived thread that enters it (setns; the socket stays in that namespace). nullopt
// when the namespace cannot be entered here (no CAP_SYS_ADMIN, the process is gone);
// the caller then tries the container's address.
std::optional<int> connect_port_in_netns(pid_t pid, std::uint16_t port, const std::string& job_id);

}  // namespace neurod::executor
