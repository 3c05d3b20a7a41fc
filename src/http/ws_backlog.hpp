// How many bytes a WebSocket has queued and not written to its peer yet: the back-pressure
// hint for long-lived senders (a log follower), like StreamWriter::queued_bytes(). The
// server's WebSockets implement it; kept beside types.hpp, not in it, so that adding it did
// not rebuild every module (fold it into WebSocket when types.hpp changes anyway).
#pragma once

#include "http/types.hpp"

#include <cstddef>

namespace neurod::http {

class SendBacklog {
 public:
  virtual std::size_t queued_bytes() const = 0;

 protected:
  ~SendBacklog() = default;
};

// 0 for a WebSocket that does not say.
inline std::size_t queued_bytes(const WebSocket& ws) {
  const auto* b = dynamic_cast<const SendBacklog*>(&ws);
  return b ? b->queued_bytes() : 0;
}

}  // namespace neurod::http
