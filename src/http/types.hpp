// The HTTP types modules see (DESIGN §3). No Beast or Asio here: modules include
// this header, and keeping it small keeps their builds fast.
#pragma once

#include "core/errors.hpp"
#include "core/units.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace neurod::http {

enum class Method { get, head, post, put, patch, del, options };
std::string_view to_string(Method m);
std::optional<Method> parse_method(std::string_view s);

// Header names compare case-insensitively; order and repeats are kept.
class Headers {
 public:
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> get_all(std::string_view name) const;
  void set(std::string name, std::string value);  // replaces any existing
  void add(std::string name, std::string value);  // appends
  void remove(std::string_view name);
  bool contains(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Who is calling. Filled by the authenticator (the auth module); anonymous until then.
struct Principal {
  std::string name;             // user or service account name; empty = anonymous
  std::string kind = "anonymous";  // "user", "service", "anonymous"
  std::string credential;          // the id of the token that authenticated it (never the token)
  // Set for a scoped token (auth's ScopedTokens: the registry token flow): what it may do,
  // e.g. "repository:alice/train:pull,push", on top of (never beyond) the principal's ACL.
  // nullopt: a full token, limited by the ACL only.
  std::optional<std::vector<std::string>> scopes;
  bool authenticated() const { return !name.empty(); }
};

// A path or request target fit for logs: each path segment that is a capability (the
// job HTTP proxy's tickets, "~t.TICKET", also percent-encoded as "%7Et.") shown as "~t.…".
// The access log, error log lines and the audit log use it.
std::string redact_capabilities(std::string_view path_or_target);

class Request {
 public:
  Method method = Method::get;
  std::string target;  // raw request target, e.g. "/api/v1/jobs?status=running"
  std::string path;    // percent-decoded path without the query
  std::vector<std::pair<std::string, std::string>> query;   // decoded, in order
  std::vector<std::pair<std::string, std::string>> params;  // from the route pattern
  Headers headers;
  std::string remote_address;
  std::string request_id;
  Principal principal;
  // The resource this request acted on (a URI or a name), set by the handler for the
  // audit log; empty means the path says it all.
  std::string resource;

  // Body, depending on the route's BodyKind.
  std::string body;                    // BodyKind::memory
  std::filesystem::path body_file;     // BodyKind::file: a temp file the server deletes afterwards
  std::uint64_t body_size = 0;
  std::shared_ptr<class BodySink> sink;  // BodyKind::sink: what the route's sink factory made

  // The path parameter; throws Error(internal) if the route has no such parameter.
  const std::string& param(std::string_view name) const;
  std::optional<std::string> query_param(std::string_view name) const;
  std::vector<std::string> query_params(std::string_view name) const;
  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
  // Parses the body as JSON; malformed JSON throws Error(bad_request) saying where.
  nlohmann::json json() const;
};

// A producer for chunked responses and other long-lived streams. The server calls
// start() once on an I/O thread (it must not block); the source then writes from any
// thread it likes. Each chunk is sent as it comes; write() returns false once the
// client is gone, and the source should stop.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string chunk) = 0;
  virtual void close() = 0;  // the final chunk; later writes are ignored
  // Ends the connection without the final chunk, so the client sees an incomplete body.
  virtual void abort() = 0;
  virtual bool closed() const = 0;
  virtual std::size_t queued_bytes() const = 0;  // back-pressure hint
};

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  virtual void start(std::shared_ptr<StreamWriter> writer) = 0;
  virtual void cancel() {}  // the client disconnected or the server is draining
};

// BodyKind::sink: a route that consumes its body as it arrives (a storage upload written
// straight to its destination's temp file). The route's SinkFactory runs on the blocking
// pool after authentication and before any body byte is read (and before `100 Continue`),
// so it can refuse the request (throw Error) without the body being sent. The server then
// hands it the body piece by piece, in order, on the blocking pool; write() may throw Error
// to refuse the rest (the server answers that error and closes the connection). When the
// whole body arrived the route's handler runs with Request::sink set; when the client went
// away or the body was cut off, aborted() is called instead and no handler runs.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void write(const char* data, std::size_t size) = 0;
  virtual void aborted() noexcept {}
};

class Response {
 public:
  enum class Kind { memory, file, stream };

  int status = 200;
  Headers headers;
  Kind kind = Kind::memory;
  std::string body;                              // Kind::memory
  std::filesystem::path file;                    // Kind::file (Range and HEAD handled by the server)
  // Kind::file: an open descriptor read instead of opening `file` (the handler resolved the
  // path safely and holds it open, so nothing can swap the file in between). Closed by its deleter.
  std::shared_ptr<int> file_fd;
  std::shared_ptr<StreamSource> stream_source;   // Kind::stream (chunked)

  static Response json(const nlohmann::json& value, int status = 200);
  static Response text(std::string body, int status = 200,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response no_content();
  static Response from_file(std::filesystem::path path, std::string content_type = "application/octet-stream");
  // Takes ownership of fd (closed when the response is done).
  static Response from_fd(int fd, std::string content_type = "application/octet-stream");
  static Response stream(std::string content_type, std::shared_ptr<StreamSource> source);
  // A finite stream produced by a function on the blocking pool (e.g. an ndjson list).
  static Response stream(std::string content_type, std::function<void(StreamWriter&)> producer);
};

// WebSocket: after the upgrade the server calls on_open, then on_message for each
// message, then on_close. send_* may be called from any thread. on_message runs on the
// connection's I/O thread: it must not block.
//
// Back-pressure, both ways, so that a fast peer and a slow target never make the server
// buffer without bound:
// - sending: send_* queue without limit; a producer keeps queued_bytes() bounded and
//   waits for on_drain before sending more;
// - receiving: a handler that cannot hand a message on right away calls pause_reading();
//   no further message is read from the socket (TCP then slows the peer down) until
//   resume_reading(). A message already read is still delivered.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  virtual void send_text(std::string message) = 0;
  virtual void send_binary(std::string message) = 0;
  virtual void close(int code = 1000, std::string reason = {}) = 0;
  virtual bool is_open() const = 0;
  // Bytes given to send_* and not yet written to the socket.
  virtual std::size_t queued_bytes() const = 0;
  // fn runs on the I/O thread each time the send queue drops from above `low_water`
  // bytes to `low_water` or fewer, and once more when the connection ends (so a waiting
  // producer wakes up and sees is_open() false). Replaces an earlier one. fn must not block.
  virtual void on_drain(std::size_t low_water, std::function<void()> fn) = 0;
  // Thread-safe; pausing twice needs one resume.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
};

struct WebSocketHandler {
  std::function<void(std::shared_ptr<WebSocket>)> on_open;
  std::function<void(std::shared_ptr<WebSocket>, std::string message, bool binary)> on_message;
  std::function<void()> on_close;
  std::string subprotocol;  // echoed in Sec-WebSocket-Protocol when not empty
  // A byte tunnel instead of the callbacks above (port-forward): a connected stream socket
  // (TCP or unix) that the server carries raw bytes to and from, on the connection's I/O
  // thread with no queue beyond one buffer each way (the slower side sets the pace).
  // Each binary message is written to the fd; bytes read from the fd go out as binary
  // messages. An empty binary message from the peer means "no more data from me": the
  // server shuts the fd's write side and keeps forwarding the other way. End of data
  // from the fd ends the tunnel (the server closes the WebSocket, after what it read);
  // the peer closing, an error on either side or the server stopping closes both.
  // Owned: closed through its deleter. on_close still runs at the end.
  std::shared_ptr<int> tunnel_fd;
};

enum class BodyKind { none, memory, file, sink };
enum class Exec { pool, io };  // io: trivial handlers that never block may run on the I/O thread

struct RouteOptions {
  bool public_route = false;     // true: no authentication needed. Default: authenticated.
  BodyKind body = BodyKind::memory;
  // BodyKind::sink only: makes the sink for each request (see BodySink). Declared here
  // rather than with Handler so that it lives in the frozen route table.
  std::function<std::shared_ptr<BodySink>(Request&)> sink;
  std::uint64_t body_limit = 0;  // 0: the server's http.max_body_size
  Duration timeout{0};           // 0: the server's http.request_timeout
  Exec exec = Exec::pool;
  // A POST that changes nothing (a query too big for a URL, like a permission check):
  // the audit log, which records every mutating request, leaves it out.
  bool read_only = false;
  std::string summary;           // one line for the route listing
  // Renders every error raised for this route (the 401 given before the handler runs, a
  // refused body, a handler's Error) instead of neurod's JSON error body; the registry
  // answers in the OCI Distribution form with its Bearer challenge. Must not throw.
  std::function<Response(const Error& error, const Request& request)> render_error;
};

using Handler = std::function<Response(Request&)>;
using SinkFactory = std::function<std::shared_ptr<BodySink>(Request&)>;
using WebSocketFactory = std::function<WebSocketHandler(Request&)>;
// Returns the principal for valid credentials, nullopt when none were given;
// throws Error(unauthenticated) for invalid ones. It runs on the I/O thread, before
// any body is read, on every request: answer from memory (a token cache), never
// block on the database or the disk.
using Authenticator = std::function<std::optional<Principal>(const Request&)>;

}  // namespace neurod::http
