// Exec, attach and kill (README.md "Exec, attach, kill"; reference §5):
//   GET /api/v1/jobs/{job}/exec?cmd=…&tty=&stdin=&stdout=&stderr=   WebSocket
//   GET /api/v1/jobs/{job}/attach?tty=&stdin=&stdout=&stderr=       WebSocket
//   POST /api/v1/jobs/{job}/kill?signal=SIGTERM                     204
// Binary frames whose first byte is the channel: 0 stdin (client → job; a frame with no
// payload closes stdin), 1 stdout, 2 stderr, 3 the end ({"exit_code": N}, or {"error": …}
// when the session failed), 4 resize (client → job, {"height", "width"}).
//
// The WebSocket factory runs on the blocking pool: it checks the caller (`write` on the job),
// the query and that the job runs, and makes the executor's session. on_open starts it (its
// own thread), on_message only queues (stdin, resize), on_close cancels it.
#include "core/errors.hpp"
#include "modules/executor/executor.hpp"
#include "modules/jobs/service.hpp"
#include "modules/monitoring/module.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace neurod::monitoring {

namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr std::string_view kSubprotocols[] = {"v2.channels.neu.ro", "attach.apolo.us"};

bool flag(const Request& req, const std::string& name, bool fallback) {
  auto v = req.query_param(name);
  if (!v) return fallback;
  if (*v == "" || *v == "true" || *v == "1" || *v == "yes") return true;
  if (*v == "false" || *v == "0" || *v == "no") return false;
  throw Error(errc::bad_request, name + ": expected true or false (1 or 0), got \"" + *v + "\"").with_code("invalid_query");
}

// POSIX shell words: blanks separate, '…' is literal, "…" keeps \" \\ \$ \`, \ escapes
// one character outside quotes. No expansion. Throws bad_request on an open quote.
std::vector<std::string> shell_split(std::string_view s) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      auto end = s.find('\'', i + 1);
      if (end == std::string_view::npos) throw Error(errc::bad_request, "cmd: unterminated ' quote").with_code("invalid_command");
      word.append(s.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i >= s.size()) throw Error(errc::bad_request, "cmd: unterminated \" quote").with_code("invalid_command");
        if (s[i] == '"') break;
        if (s[i] == '\\' && i + 1 < s.size() && std::string_view("\"\\$`").find(s[i + 1]) != std::string_view::npos)
          ++i;
        word += s[i];
      }
    } else if (c == '\\') {
      if (i + 1 < s.size()) word += s[++i];
    } else {
      word += c;
    }
  }
  if (in_word) out.push_back(std::move(word));
  return out;
}

// What the factory hands to on_open and the session's callbacks.
struct WsSession {
  // Output waits while the client has more than kHigh bytes not yet taken, until it is down
  // to kLow: send() runs on the session's own thread (never an I/O thread), so waiting there
  // leaves the command blocked on its full pipe or terminal, as a slow terminal would.
  static constexpr std::size_t kHigh = 4u << 20;
  static constexpr std::size_t kLow = 1u << 20;

  std::mutex mu;
  std::condition_variable drained;
  std::shared_ptr<http::WebSocket> ws;
  std::shared_ptr<executor::Session> session;
  bool ended = false;

  void wake() {
    { std::lock_guard lock(mu); }
    drained.notify_all();
  }

  void send(char channel, std::string_view data) {
    std::shared_ptr<http::WebSocket> w;
    {
      std::lock_guard lock(mu);
      w = ws;
    }
    if (!w) return;
    std::string frame;
    frame.reserve(data.size() + 1);
    frame += channel;
    frame.append(data);
    w->send_binary(std::move(frame));
    if (w->queued_bytes() <= kHigh) return;
    std::unique_lock lock(mu);
    while (!ended && ws && w->is_open() && w->queued_bytes() > kLow)
      drained.wait_for(lock, std::chrono::milliseconds(500));
  }

  void finish(std::optional<int> code, const std::string& error) {
    std::shared_ptr<http::WebSocket> w;
    {
      std::lock_guard lock(mu);
      ended = true;
      w = ws;
    }
    json j = code ? json{{"exit_code", *code}} : json{{"error", error}};
    send(3, j.dump());
    if (w) w->close(1000, "");
  }
};

http::WebSocketFactory session_factory(jobs::Service& jobs, std::function<executor::Runner&()> runner, bool exec) {
  return [&jobs, runner, exec](Request& req) {
    auto job = jobs.get_for_write(req.principal, req.param("job"));
    req.resource = job.uri();

    executor::SessionSpec spec;
    spec.tty = flag(req, "tty", false);
    spec.use_stdin = flag(req, "stdin", false);
    spec.use_stdout = flag(req, "stdout", true);
    spec.use_stderr = flag(req, "stderr", true);
    if (spec.tty && spec.use_stdout && spec.use_stderr)
      throw Error(errc::bad_request, "a TTY has one output: ask for stdout or stderr, not both (stderr=0)")
          .with_code("invalid_streams");
    if (!spec.use_stdin && !spec.use_stdout && !spec.use_stderr)
      throw Error(errc::bad_request, "ask for at least one of stdin, stdout and stderr").with_code("invalid_streams");
    for (const char* dim : {"height", "width"})
      if (auto v = req.query_param(dim)) {
        char* end = nullptr;
        long n = std::strtol(v->c_str(), &end, 10);
        if (v->empty() || *end || n < 1 || n > 10000)
          throw Error(errc::bad_request, std::string(dim) + ": 1 to 10000").with_code("invalid_query");
        (std::string_view(dim) == "height" ? spec.height : spec.width) = static_cast<unsigned>(n);
      }
    if (exec) {
      auto cmds = req.query_params("cmd");
      if (cmds.size() == 1)
        spec.command = shell_split(cmds[0]);
      else
        spec.command = std::move(cmds);
      if (spec.command.empty() || spec.command[0].empty())
        throw Error(errc::bad_request, "cmd: the command to run (cmd=sh, or cmd=ls&cmd=-l)").with_code("command_required");
    }
    if (job.current().status != jobs::Status::running) throw executor::job_not_running(job.id);

    auto state = std::make_shared<WsSession>();
    executor::SessionCallbacks callbacks;
    std::weak_ptr<WsSession> weak = state;
    callbacks.on_output = [weak](int stream, std::string_view data) {
      if (auto s = weak.lock()) s->send(static_cast<char>(stream), data);
    };
    callbacks.on_exit = [weak](std::optional<int> code, const std::string& error) {
      if (auto s = weak.lock()) s->finish(code, error);
    };
    auto& r = runner();
    // The jobs API calls a job running as soon as its runner reported it, a moment before the
    // engine's own state (or the sandbox's status file) says so under load: give the runner
    // up to 3 s to agree rather than tell a user who just saw "running" that it is not.
    // This runs on the blocking pool, before the upgrade.
    for (int tries = 0;; ++tries) {
      try {
        state->session = exec ? r.exec(job.id, spec, callbacks) : r.attach(job.id, spec, callbacks);
        break;
      } catch (const Error& e) {
        if (e.code_name() != "job_not_running" || tries >= 30) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (jobs.get_for_write(req.principal, job.id).current().status != jobs::Status::running) throw;
      }
    }

    http::WebSocketHandler h;
    for (auto offered : req.headers.get_all("Sec-WebSocket-Protocol")) {
      for (auto known : kSubprotocols)
        if (h.subprotocol.empty() && offered.find(known) != std::string_view::npos) h.subprotocol = known;
    }
    h.on_open = [state](std::shared_ptr<http::WebSocket> ws) {
      std::weak_ptr<WsSession> weak_state = state;
      ws->on_drain(WsSession::kLow, [weak_state] {
        if (auto s = weak_state.lock()) s->wake();
      });
      {
        std::lock_guard lock(state->mu);
        state->ws = std::move(ws);
      }
      state->session->start();
    };
    h.on_message = [state](std::shared_ptr<http::WebSocket>, std::string message, bool) {
      if (message.empty()) return;
      char channel = message[0];
      if (channel == 0) {
        if (message.size() == 1)
          state->session->close_stdin();
        else
          state->session->write_stdin(message.substr(1));
      } else if (channel == 4) {
        auto j = json::parse(message.begin() + 1, message.end(), nullptr, false);
        if (j.is_object() && j.contains("height") && j.contains("width") && j["height"].is_number_unsigned() &&
            j["width"].is_number_unsigned())
          state->session->resize(j["height"].get<unsigned>(), j["width"].get<unsigned>());
      }
    };
    h.on_close = [state] {
      state->session->cancel();
      {
        std::lock_guard lock(state->mu);
        state->ws.reset();
      }
      state->drained.notify_all();
    };
    return h;
  };
}

}  // namespace

void Module::add_exec_routes(http::Router& r) {
  auto runner = [this]() -> executor::Runner& { return this->runner(); };
  r.websocket("/api/v1/jobs/{job}/exec", session_factory(jobs_, runner, true),
              {.body = http::BodyKind::none, .summary = "Run a command in a running job (WebSocket, channel framing)"});
  r.websocket("/api/v1/jobs/{job}/attach", session_factory(jobs_, runner, false),
              {.body = http::BodyKind::none, .summary = "Attach to a running job's stdio (WebSocket, channel framing)"});
  r.post(
      "/api/v1/jobs/{job}/kill",
      [this](Request& req) {
        auto job = jobs_.get_for_write(req.principal, req.param("job"));
        req.resource = job.uri();
        int signo = 9;
        if (auto s = req.query_param("signal")) {
          auto parsed = executor::parse_signal(*s);
          if (!parsed)
            throw Error(errc::bad_request, "signal: a signal name or number (SIGTERM, TERM, 15), got \"" + *s + "\"")
                .with_code("invalid_signal");
          signo = *parsed;
        }
        if (job.current().status != jobs::Status::running) throw executor::job_not_running(job.id);
        this->runner().signal(job.id, signo);
        return Response::no_content();
      },
      {.body = http::BodyKind::none, .summary = "Send a signal to a running job (default SIGKILL)"});
}

}  // namespace neurod::monitoring
