// neuro port-forward and neuro save (docs/cli.md "Port-forward and save"; the server side
// is modules/monitoring/port_forward.cpp).
#include "cli/api_path.hpp"
#include "cli/commands.hpp"
#include "http/ws_tunnel.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

namespace neurod::cli {

namespace {

using nlohmann::json;

std::string job_path(std::string_view job) { return api("/jobs/" + path_segment(job)); }

struct Mapping {
  std::uint16_t local = 0;  // 0: any free port (printed)
  std::uint16_t remote = 0;
};

std::optional<std::uint16_t> parse_port(std::string_view s, bool zero_ok) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535 || (v == 0 && !zero_ok)) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

Mapping parse_mapping(const std::string& text) {
  auto colon = text.find(':');
  std::optional<std::uint16_t> local, remote;
  if (colon == std::string::npos) {
    local = remote = parse_port(text, false);
  } else {
    local = parse_port(std::string_view(text).substr(0, colon), true);
    remote = parse_port(std::string_view(text).substr(colon + 1), false);
  }
  if (!local || !remote)
    throw CliError(Exit::usage,
                   "expected LOCAL_PORT:REMOTE_PORT (e.g. 8888:8888; LOCAL 0 picks a free port), got \"" + text + "\"");
  return {*local, *remote};
}

std::mutex g_err_mu;
void say(const std::string& line) {
  std::lock_guard lock(g_err_mu);
  std::cerr << line << std::endl;
}

// One accepted local connection: its own WebSocket and thread.
void serve(int fd, std::string url, std::string target, std::string token, std::string where) {
  try {
    http::ClientOptions opts;
    opts.token = std::move(token);
    opts.timeout = std::chrono::seconds(30);
    http::WebSocketTunnel tunnel(url, target, opts);
    tunnel.run(fd);
  } catch (const std::exception& e) {
    say("neuro: port-forward " + where + ": " + e.what());
  }
  ::close(fd);
}

int run_port_forward(Context& ctx, const std::string& job_ref, const std::vector<std::string>& specs) {
  std::vector<Mapping> maps;
  for (const auto& s : specs) maps.push_back(parse_mapping(s));
  // The job first: a wrong name fails now, not on the first connection.
  auto job = ctx.get_json(job_path(job_ref));
  std::string id = job.value("id", job_ref);
  std::string status = job.contains("status") && job["status"].is_string() ? job["status"].get<std::string>() : "";
  if (!status.empty() && status != "running" && status != "pending")
    throw CliError(Exit::failure, "job " + id + " is " + status + ": nothing to forward to");

  // Signals go to sigwait below, not to the threads.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const auto url = ctx.settings().url;
  const auto token = ctx.settings().token;
  for (const auto& m : maps) {
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(m.local);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(ls, 128) != 0)
      throw CliError(Exit::failure,
                     "cannot listen on 127.0.0.1:" + std::to_string(m.local) + ": " + std::strerror(errno));
    socklen_t len = sizeof(addr);
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len);
    auto local = ntohs(addr.sin_port);
    auto target = job_path(id) + "/port_forward/" + std::to_string(m.remote);
    auto where = "127.0.0.1:" + std::to_string(local) + " -> " + id + ":" + std::to_string(m.remote);
    std::cout << "Forwarding 127.0.0.1:" << local << " -> port " << m.remote << " of job " << id << std::endl;
    std::thread([ls, url, target, token, where] {
      for (;;) {
        int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          say("neuro: port-forward " + where + ": accept failed: " + std::strerror(errno));
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        std::thread(serve, fd, url, target, token, where).detach();
      }
    }).detach();
  }
  std::cout << "Press Ctrl-C to stop" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cout.flush();
  // Open tunnels end with the process.
  std::_Exit(0);
}

// --- save --------------------------------------------------------------------

int run_save(Context& ctx, const std::string& job_ref, const std::string& image) {
  if (!image.starts_with("image:") && image.find('/') == std::string::npos)
    throw CliError(Exit::usage, "expected image:NAME:TAG (or image://CLUSTER/PROJECT/NAME:TAG), got \"" + image + "\"");
  http::ClientOptions opts;
  opts.token = ctx.settings().token;
  opts.timeout = Duration(0);  // a push of a big image takes as long as it takes
  http::Client client(ctx.settings().url, opts);
  bool tty = ::isatty(STDERR_FILENO) == 1 && !ctx.json_output();
  json body = {{"container", {{"image", image}}}};
  std::string pending, error;
  json final_line;
  bool progress_line_open = false;
  auto on_line = [&](std::string_view line) {
    if (line.empty()) return;
    json j;
    try {
      j = json::parse(line);
    } catch (const std::exception&) {
      return;
    }
    if (!j.is_object()) return;
    if (j.contains("error")) {
      if (j.contains("errorDetail") && j["errorDetail"].is_object() && j["errorDetail"].contains("message"))
        error = j["errorDetail"]["message"].get<std::string>();
      else
        error = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      return;
    }
    if (j.contains("image")) final_line = j;
    if (!tty) return;
    std::string text = j.value("status", std::string());
    if (auto id = j.value("id", std::string()); !id.empty() && id.size() <= 16) text = id + ": " + text;
    if (auto p = j.value("progress", std::string()); !p.empty()) text += " " + p;
    bool is_progress =
        j.contains("progressDetail") && j["progressDetail"].is_object() && j["progressDetail"].contains("current");
    if (is_progress) {
      std::cerr << "\r\033[K" << text << std::flush;
      progress_line_open = true;
    } else if (!text.empty()) {
      std::cerr << (progress_line_open ? "\r\033[K" : "") << text << std::endl;
      progress_line_open = false;
    }
  };
  auto r = client.stream(
      "POST", job_path(job_ref) + "/save",
      [&](std::string_view chunk) {
        pending.append(chunk);
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1))
          on_line(std::string_view(pending).substr(0, nl));
        return true;
      },
      body.dump(), {{"Content-Type", "application/json"}},
      [](const http::ClientResponse& head) { return head.status >= 200 && head.status < 300; });
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  on_line(pending);
  if (progress_line_open) std::cerr << std::endl;
  if (!error.empty()) throw CliError(Exit::server, "save failed: " + error);
  if (final_line.is_null())
    throw CliError(Exit::server, "save failed: the server ended without saying it saved the image");
  if (ctx.json_output()) {
    print_json(final_line);
  } else {
    std::cout << "Saved " << final_line.value("image", image);
    if (auto d = final_line.value("digest", std::string()); !d.empty()) std::cout << " " << d;
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace

void register_forward_commands(CLI::App& app, Context& ctx) {
  auto* pf = app.add_subcommand(
      "port-forward", "Forward local TCP ports to ports of a running job (until Ctrl-C); LOCAL 0 picks a free port");
  auto job = std::make_shared<std::string>();
  auto specs = std::make_shared<std::vector<std::string>>();
  pf->add_option("JOB", *job, "Job id or name")->required();
  pf->add_option("LOCAL:REMOTE", *specs, "Port pairs, e.g. 8888:8888 (a single PORT means PORT:PORT)")->required();
  on_run(pf, ctx, [&ctx, job, specs] { return run_port_forward(ctx, *job, *specs); });

  auto* save = app.add_subcommand("save", "Save a running job's container as an image in this neurod's registry");
  auto sjob = std::make_shared<std::string>();
  auto image = std::make_shared<std::string>();
  save->add_option("JOB", *sjob, "Job id or name")->required();
  save->add_option("IMAGE", *image, "image:NAME:TAG (in the job's project) or image://CLUSTER/PROJECT/NAME:TAG")
      ->required();
  on_run(save, ctx, [&ctx, sjob, image] { return run_save(ctx, *sjob, *image); });
}

}  // namespace neurod::cli
