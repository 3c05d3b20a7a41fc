// Logs (README.md "Logs"): a job's log read once, followed over chunked HTTP or over a
// WebSocket, and deleted. Followers subscribe to the executor's LogStore, which sends the
// log from the start and then pushes each line as it is appended: a follower holds no
// thread, only its connection's queue (bounded: LogStore::kMaxBacklog drops a follower
// that does not keep up, so a slow reader never slows the job or the others).
#include "core/errors.hpp"
#include "core/log.hpp"
#include "core/times.hpp"
#include "http/router.hpp"
#include "modules/executor/log_store.hpp"
#include "modules/jobs/service.hpp"
#include "modules/monitoring/module.hpp"

#include <fmt/format.h>

#include <atomic>
#include <mutex>

namespace neurod::monitoring {

namespace {

using http::Request;
using http::Response;

// The subprotocol of the reference's log WebSocket.
constexpr std::string_view kLogSubprotocol = "logs.apolo.us";

// "2026-11-23T10:00:00Z", or a duration meaning that long ago ("10m", "1h").
executor::TimePoint since_param(const std::string& value) {
  std::int64_t ms = 0;
  if (auto t = jobs::parse_time_ms(value))
    ms = *t;
  else if (auto d = parse_duration(value))
    ms = now_ms() - d->count();
  else
    throw Error(errc::bad_request,
                fmt::format("since: '{}' is neither a time (2026-11-23T10:00:00Z) nor a duration (1h30m)", value))
        .with_code("bad_since");
  return executor::TimePoint(std::chrono::milliseconds(ms));
}

bool bool_param(const Request& req, const std::string& name) {
  auto v = req.query_param(name);
  if (!v) return false;
  if (*v == "" || *v == "true" || *v == "1" || *v == "yes") return true;
  if (*v == "false" || *v == "0" || *v == "no") return false;
  throw Error(errc::bad_request, fmt::format("{}: '{}' is not true or false", name, *v)).with_code("bad_parameter");
}

struct LogQuery {
  std::optional<executor::TimePoint> since;
  bool timestamps = false;
  bool follow = false;
};

LogQuery log_query(const Request& req) {
  for (const auto& [k, v] : req.query)
    if (k != "since" && k != "timestamps" && k != "follow")
      throw Error(errc::bad_request, fmt::format("unknown parameter '{}': the log takes since, timestamps, follow", k))
          .with_code("bad_parameter");
  LogQuery q;
  if (auto s = req.query_param("since")) q.since = since_param(*s);
  q.timestamps = bool_param(req, "timestamps");
  q.follow = bool_param(req, "follow");
  return q;
}

// Records in the store's form ("<time> <text>\n"…) as the client asked for them: lines
// from `since` on, with or without their time.
std::string render(std::string_view records, const LogQuery& q) {
  std::string out;
  out.reserve(records.size());
  while (!records.empty()) {
    auto nl = records.find('\n');
    auto rec = records.substr(0, nl);
    records = nl == std::string_view::npos ? std::string_view{} : records.substr(nl + 1);
    auto space = rec.find(' ');
    if (space == std::string_view::npos) continue;
    if (q.since) {
      auto t = executor::parse_log_time(rec.substr(0, space));
      if (!t || *t < *q.since) continue;
    }
    out += q.timestamps ? rec : rec.substr(space + 1);
    out += '\n';
  }
  return out;
}

// WebSocket text frames must be UTF-8: invalid bytes become U+FFFD.
std::string valid_utf8(std::string s) {
  auto bytes = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size(), i = 0;
  auto valid_at = [&](std::size_t at) -> std::size_t {  // length of a valid sequence at `at`, 0 if none
    unsigned char c = bytes[at];
    if (c < 0x80) return 1;
    std::size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || at + len > n) return 0;
    for (std::size_t k = 1; k < len; ++k)
      if ((bytes[at + k] & 0xC0) != 0x80) return 0;
    std::uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (bytes[at + k] & 0x3F);
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    return len;
  };
  for (; i < n; ++i)
    if (bytes[i] >= 0x80) break;
  if (i == n) return s;  // plain ASCII, the common case
  std::string out(s, 0, i);
  while (i < n) {
    auto len = valid_at(i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  return out;
}

// A follower over chunked HTTP.
class HttpFollower final : public executor::LogFollower {
 public:
  HttpFollower(std::shared_ptr<http::StreamWriter> out, LogQuery q, std::string job)
      : out_(std::move(out)), q_(q), job_(std::move(job)) {}
  bool deliver(std::string_view records) override {
    auto text = render(records, q_);
    if (text.empty()) return !out_->closed();
    return out_->write(std::move(text));
  }
  std::size_t backlog() const override { return out_->queued_bytes(); }
  void end(executor::LogEnd why) override {
    if (why == executor::LogEnd::too_slow) {
      // An incomplete chunked body: the client sees the stream broke, not a finished log.
      spdlog::warn("logs: dropped a follower of job {}: more than {} bytes behind", job_,
                   executor::LogStore::kMaxBacklog);
      out_->abort();
    } else {
      out_->close();
    }
  }

 private:
  std::shared_ptr<http::StreamWriter> out_;
  LogQuery q_;
  std::string job_;
};

class FollowSource final : public http::StreamSource {
 public:
  FollowSource(executor::LogStore& store, std::string job, LogQuery q) : store_(store), job_(std::move(job)), q_(q) {}
  void start(std::shared_ptr<http::StreamWriter> writer) override {
    auto follower = std::make_shared<HttpFollower>(writer, q_, job_);
    std::lock_guard lock(mu_);
    if (cancelled_) return writer->close();
    id_ = store_.subscribe(job_, std::move(follower));
  }
  void cancel() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (id_) store_.unsubscribe(id_);
  }

 private:
  executor::LogStore& store_;
  std::string job_;
  LogQuery q_;
  std::mutex mu_;
  std::uint64_t id_ = 0;
  bool cancelled_ = false;
};

// A follower over a WebSocket: one text frame per delivery (one or more whole lines).
class WsFollower final : public executor::LogFollower {
 public:
  WsFollower(std::shared_ptr<http::WebSocket> ws, LogQuery q, std::string job)
      : ws_(std::move(ws)), q_(q), job_(std::move(job)) {}
  bool deliver(std::string_view records) override {
    if (!ws_->is_open()) return false;
    auto text = render(records, q_);
    if (!text.empty()) ws_->send_text(valid_utf8(std::move(text)));
    return true;
  }
  std::size_t backlog() const override { return ws_->queued_bytes(); }
  void end(executor::LogEnd why) override {
    switch (why) {
      case executor::LogEnd::closed:
        return ws_->close(1000, "the log ended");
      case executor::LogEnd::removed:
        return ws_->close(1000, "the log was deleted");
      case executor::LogEnd::too_slow:
        spdlog::warn("logs: dropped a WebSocket follower of job {}: more than {} bytes behind", job_,
                     executor::LogStore::kMaxBacklog);
        return ws_->close(1013, "too far behind: reconnect with since");
      case executor::LogEnd::stopped:
        return ws_->close(1001, "going away");
    }
  }

 private:
  std::shared_ptr<http::WebSocket> ws_;
  LogQuery q_;
  std::string job_;
};

// Whether the client offered the log subprotocol (then it is echoed back).
bool offers_log_subprotocol(const Request& req) {
  for (auto h : req.headers.get_all("Sec-WebSocket-Protocol")) {
    std::string_view rest = h;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto part = rest.substr(0, comma);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      if (part == kLogSubprotocol) return true;
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return false;
}

}  // namespace

void Module::add_log_routes(http::Router& r) {
  r.get(
      "/api/v1/jobs/{job}/log",
      [this](Request& req) {
        auto q = log_query(req);
        auto job = jobs_.get(req.principal, req.param("job"));
        auto& store = logs();
        req.resource = job.uri();
        // A finished job's deleted log has nothing more to come: read, not follow.
        if (q.follow && jobs::is_finished(job.current().status) && !store.is_closed(job.id) && !store.exists(job.id))
          q.follow = false;
        if (q.follow)
          return Response::stream("text/plain; charset=utf-8", std::make_shared<FollowSource>(store, job.id, q));
        // A finite read: on the blocking pool, to the end of what is stored now.
        auto id = job.id;
        return Response::stream("text/plain; charset=utf-8", [&store, id, q](http::StreamWriter& out) {
          std::string batch;
          store.read(id, q.since, false, [&](const executor::LogLine& line) {
            if (q.timestamps) batch += executor::format_log_time(line.time) + " ";
            batch += line.text;
            batch += '\n';
            if (batch.size() < 65536) return true;
            bool ok = out.write(std::move(batch));
            batch.clear();
            return ok;
          });
          if (!batch.empty()) out.write(std::move(batch));
          out.close();
        });
      },
      {.body = http::BodyKind::none,
       .timeout = std::chrono::hours(24 * 365),
       .summary = "A job's log (since, timestamps, follow)"});

  r.websocket(
      "/api/v1/jobs/{job}/log_ws",
      [this](Request& req) {
        auto q = log_query(req);
        q.follow = true;  // a WebSocket always follows; `follow=false` is accepted and means the same
        auto job = jobs_.get(req.principal, req.param("job"));
        auto* store = &logs();
        req.resource = job.uri();
        struct State {
          std::mutex mu;
          std::uint64_t id = 0;
          bool closed = false;
        };
        auto state = std::make_shared<State>();
        http::WebSocketHandler h;
        if (offers_log_subprotocol(req)) h.subprotocol = std::string(kLogSubprotocol);
        h.on_open = [store, state, q, id = job.id](std::shared_ptr<http::WebSocket> ws) {
          auto follower = std::make_shared<WsFollower>(std::move(ws), q, id);
          std::lock_guard lock(state->mu);
          if (!state->closed) state->id = store->subscribe(id, std::move(follower));
        };
        h.on_message = [](std::shared_ptr<http::WebSocket>, std::string, bool) {};  // nothing to say to us
        h.on_close = [store, state] {
          std::lock_guard lock(state->mu);
          state->closed = true;
          if (state->id) store->unsubscribe(state->id);
        };
        return h;
      },
      {.body = http::BodyKind::none, .summary = "Follow a job's log over a WebSocket (since, timestamps)"});

  r.del(
      "/api/v1/jobs/{job}/log",
      [this](Request& req) {
        auto job = jobs_.get_for_write(req.principal, req.param("job"));
        req.resource = job.uri();
        auto& store = logs();
        // The log is complete once the executor closed it (a cancelled job is finished at once,
        // its last lines come when it has stopped).
        if (!jobs::is_finished(job.current().status) || (store.exists(job.id) && !store.is_closed(job.id)))
          throw Error(errc::conflict, fmt::format("job {} is {} and its log may still grow: it can be deleted once the "
                                                  "job has finished (neuro kill {} first)",
                                                  job.id, jobs::to_string(job.current().status), job.id))
              .with_code("job_not_finished");
        store.remove(job.id);
        return Response::no_content();
      },
      {.body = http::BodyKind::none, .summary = "Delete a finished job's log"});
}

}  // namespace neurod::monitoring
