// neuro exec, neuro attach (also under `neuro job …`): a WebSocket to
// /api/v1/jobs/{job}/exec|attach with the reference's channel framing (modules/monitoring
// README: "Exec, attach, kill"). One thread reads the terminal (stdin → channel 0, window
// size → channel 4), the main one writes what comes back (1 stdout, 2 stderr) and ends
// with the exit code from channel 3.
#include "cli/api_path.hpp"
#include "cli/commands.hpp"
#include "http/ws_client.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

namespace neurod::cli {

namespace {

using nlohmann::json;

std::atomic<bool> g_winch{false};
extern "C" void on_winch(int) { g_winch = true; }

// Raw mode on the terminal for as long as it lives (a TTY session: keys go to the job as
// they are typed, ^C included).
class RawTerminal {
 public:
  explicit RawTerminal(bool enable) {
    if (!enable || ::tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    if (::tcsetattr(0, TCSANOW, &raw) == 0) active_ = true;
  }
  ~RawTerminal() { restore(); }
  void restore() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
    active_ = false;
  }

 private:
  termios saved_{};
  bool active_ = false;
};

std::string query_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// POSIX shell quoting: the server splits `cmd` back into the same words.
std::string shell_join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    bool plain = !w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                   "@%+=:,./-_") == std::string::npos;
    if (plain) {
      out += w;
      continue;
    }
    out += '\'';
    for (char c : w) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

struct SessionOptions {
  std::string job;
  std::vector<std::string> command;  // exec only
  bool exec = true;
  bool tty = false;
  bool use_stdin = false;
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

int run_session(Context& ctx, const SessionOptions& o) {
  // The job first: the WebSocket client cannot tell why an upgrade was refused, the API can.
  auto job = ctx.get_json(api("/jobs/" + path_segment(o.job)));
  if (auto status = job.value("status", std::string()); status != "running")
    throw CliError(Exit::failure, "job " + job.value("id", o.job) + " is not running (" + status + ")");
  std::string target = api("/jobs/" + path_segment(o.job)) + (o.exec ? "/exec?" : "/attach?");
  if (o.exec) target += "cmd=" + query_escape(shell_join(o.command)) + "&";
  target += std::string("tty=") + (o.tty ? "1" : "0") + "&stdin=" + (o.use_stdin ? "1" : "0") +
            "&stdout=1&stderr=" + (o.tty ? "0" : "1");
  winsize ws{};
  bool have_size = o.tty && ::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0;
  if (have_size) target += "&height=" + std::to_string(ws.ws_row) + "&width=" + std::to_string(ws.ws_col);

  http::ClientOptions opts;
  opts.token = ctx.settings().token;
  auto socket = std::make_shared<http::WebSocketClient>(ctx.settings().url, target, opts,
                                                        std::vector<std::string>{"v2.channels.neu.ro"});
  std::mutex send_mu;
  auto send = [&](char channel, const std::string& data) {
    std::lock_guard lock(send_mu);
    socket->send_binary(std::string(1, channel) + data);
  };

  bool raw = o.tty && ::isatty(0);
  RawTerminal terminal(raw);
  if (o.tty) {
    struct sigaction sa {};
    sa.sa_handler = on_winch;
    ::sigaction(SIGWINCH, &sa, nullptr);
  }

  // The terminal side: stdin, window changes, and (attach with a TTY) Ctrl-P Ctrl-Q to detach.
  std::atomic<bool> done{false};
  std::atomic<bool> detached{false};
  std::thread input([&] {
    bool reading = o.use_stdin;
    bool ctrl_p = false;
    char buf[4096];
    while (!done) {
      if (g_winch.exchange(false)) {
        winsize now{};
        if (::ioctl(1, TIOCGWINSZ, &now) == 0 && now.ws_row > 0)
          send(4, json{{"height", now.ws_row}, {"width", now.ws_col}}.dump());
      }
      pollfd p{0, POLLIN, 0};
      int n = ::poll(&p, reading ? 1 : 0, 100);
      if (n <= 0 || !reading) continue;
      auto got = ::read(0, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        reading = false;
        send(0, "");  // end of input: the server closes the command's stdin
        continue;
      }
      std::string data(buf, static_cast<std::size_t>(got));
      if (!o.exec && raw) {
        for (char c : data) {
          if (ctrl_p && c == 0x11) {
            detached = true;
            done = true;
          }
          ctrl_p = c == 0x10;
        }
        if (detached) break;
      }
      send(0, data);
    }
  });

  std::optional<int> exit_code;
  std::string error;
  for (;;) {
    if (detached) break;
    auto m = socket->read();
    if (!m) break;
    if (m->data.empty()) continue;
    char channel = m->data[0];
    std::string_view payload(m->data);
    payload.remove_prefix(1);
    if (channel == 1) {
      write_all(1, payload);
    } else if (channel == 2) {
      write_all(2, payload);
    } else if (channel == 3) {
      auto j = json::parse(payload, nullptr, false);
      if (j.is_object() && j.contains("exit_code") && j["exit_code"].is_number_integer())
        exit_code = j["exit_code"].get<int>();
      else if (j.is_object() && j.contains("error"))
        error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      else
        error = std::string(payload);
    }
  }
  done = true;
  terminal.restore();
  if (detached) {
    std::cerr << "\r\nneuro: detached from " << o.job << "; it keeps running" << std::endl;
    // The reader may still wait on the socket: leave without joining it.
    std::cout.flush();
    std::_Exit(0);
  }
  input.join();
  if (exit_code) return *exit_code;
  if (!error.empty()) throw CliError(Exit::failure, error);
  throw CliError(Exit::unreachable, "the connection to the job ended without an exit status");
}

void add_exec(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand("exec", "Run a command in a running job; exits with the command's exit code");
  auto o = std::make_shared<SessionOptions>();
  auto tty = std::make_shared<bool>(false);
  auto no_tty = std::make_shared<bool>(false);
  cmd->add_flag("-t,--tty", *tty, "Give the command a terminal (the default when stdin and stdout are terminals)");
  cmd->add_flag("-T,--no-tty", *no_tty, "No terminal: stdout and stderr stay apart");
  cmd->add_flag("-i,--interactive", o->use_stdin, "Send stdin to the command (always with a terminal)");
  cmd->add_option("JOB", o->job, "Job id or name")->required();
  cmd->add_option("CMD", o->command, "The command and its arguments (after --)")->required();
  cmd->positionals_at_end();
  on_run(cmd, ctx, [&ctx, o, tty, no_tty] {
    auto s = *o;
    // CLI11 keeps the `--` that ends the options when it comes after JOB.
    if (!s.command.empty() && s.command.front() == "--") s.command.erase(s.command.begin());
    if (s.command.empty()) throw CliError(Exit::usage, "the command to run comes after JOB: neuro exec JOB -- CMD");
    if (*tty && *no_tty) throw CliError(Exit::usage, "--tty and --no-tty together");
    s.tty = *tty || (!*no_tty && ::isatty(0) && ::isatty(1));
    if (s.tty) s.use_stdin = true;
    return run_session(ctx, s);
  });
}

void add_attach(CLI::App& parent, Context& ctx) {
  auto* cmd = parent.add_subcommand(
      "attach", "Attach to a running job's own output (and its stdin, for jobs run with --tty); Ctrl-P Ctrl-Q detaches");
  auto o = std::make_shared<SessionOptions>();
  o->exec = false;
  auto tty = std::make_shared<bool>(false);
  cmd->add_flag("-t,--tty", *tty, "The job runs with a terminal: send keys to it, raw mode (Ctrl-P Ctrl-Q detaches)");
  cmd->add_option("JOB", o->job, "Job id or name")->required();
  on_run(cmd, ctx, [&ctx, o, tty] {
    auto s = *o;
    s.tty = *tty;
    s.use_stdin = *tty;
    return run_session(ctx, s);
  });
}

}  // namespace

void register_exec_commands(CLI::App& app, Context& ctx) {
  add_exec(app, ctx);
  add_attach(app, ctx);
  for (auto* sub : app.get_subcommands([](CLI::App* a) { return a->get_name() == "job"; })) {
    add_exec(*sub, ctx);
    add_attach(*sub, ctx);
  }
}

}  // namespace neurod::cli
