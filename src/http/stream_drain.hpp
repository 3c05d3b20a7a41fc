// Inside src/http only: the server's chunked-stream writer also tells a source when its
// queue went down, so a source that paused on StreamWriter::queued_bytes() (the HTTP
// proxy's body pump) knows when to go on without polling. Kept out of types.hpp, which
// every module includes. Use: dynamic_cast<DrainableWriter*>(writer.get()).
#pragma once

#include <cstddef>
#include <functional>

namespace neurod::http {

class DrainableWriter {
 public:
  virtual ~DrainableWriter() = default;
  // fn runs (on the connection's I/O thread; it must not block) each time the queue drops
  // from above `low_water` bytes to `low_water` or fewer, and once more when the client is
  // gone. Replaces an earlier one.
  virtual void on_drain(std::size_t low_water, std::function<void()> fn) = 0;
};

}  // namespace neurod::http
