#include "support/server/server.hpp"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>


namespace neurod::test {

const char* backend_name(Backend b) { return b == Backend::sqlite ? "sqlite" : "postgres"; }

namespace {

YAML::Node load_map(const std::string& text, const char* what) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return YAML::Node(YAML::NodeType::Map);
  auto n = YAML::Load(text);
  if (!n.IsMap()) throw std::invalid_argument(std::string("ServerSpec::") + what + " must be a YAML map:\n" + text);
  return n;
}

// dst <- src, map by map; anything else in src replaces what dst had.
void merge_into(YAML::Node dst, const YAML::Node& src) {
  for (const auto& kv : src) {
    auto key = kv.first.as<std::string>();
    YAML::Node child = dst[key];
    if (child.IsMap() && kv.second.IsMap())
      merge_into(child, kv.second);
    else
      dst[key] = kv.second;
  }
}

}  // namespace

TestServer::TestServer(ServerSpec spec) {
  db_url_ = "sqlite:" + (data_dir() / "neurod.db").string();
  if (!spec.database_url.empty()) {
    db_url_ = spec.database_url;
  } else if (spec.backend == Backend::postgres) {
    auto o = TestDatabase::default_options();
    o.pool_size = 1;
    database_ = std::make_unique<TestDatabase>(db::Dialect::postgresql, o);
    database_->close();  // the server opens its own pool
    db_url_ = database_->url();
  }
  auto generated = "cluster_name: test\n"
                   "data_dir: " + data_dir().string() + "\n"
                   "log:\n  level: warn\n"
                   "http:\n  listen: 127.0.0.1:0\n  io_threads: 2\n  blocking_threads: 4\n  drain_timeout: 5s\n" + spec.http_yaml +
                   "database:\n  url: \"" + db_url_ + "\"\n  pool_size: 4\n";
  auto modules = app::compiled_modules();
  bool has_auth = false;
  for (const auto& m : modules) has_auth = has_auth || m.name == "auth";
  for (auto& m : spec.extra_modules) modules.push_back(std::move(m));

  auto root = load_map(generated, "http_yaml");
  if (has_auth) {
    auto auth = load_map(kFastAuthYaml, "auth_yaml");
    merge_into(auth, load_map(spec.auth_yaml, "auth_yaml"));
    root["modules"]["auth"] = auth;
  } else if (!spec.auth_yaml.empty()) {
    throw std::invalid_argument("ServerSpec::auth_yaml is set but the auth module is not compiled in");
  }
  merge_into(root, load_map(spec.extra_yaml, "extra_yaml"));
  YAML::Emitter out;
  out << root;
  yaml_ = std::string(out.c_str()) + "\n";

  auto cfg = config::load_string(yaml_, "test.yaml", app::section_specs(modules));
  app_ = std::make_unique<app::App>(std::move(cfg), std::move(modules));
  app_->start();
}

TestServer::~TestServer() {
  app_->stop(std::chrono::milliseconds(2000));
  app_.reset();
}

http::Client TestServer::client(const std::string& token) const {
  http::ClientOptions o;
  o.token = token;
  return client(o);
}

std::string TestServer::admin_token() const {
  auto path = data_dir() / "auth" / "admin.token";
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token) || token.empty())
    throw std::runtime_error("no administrator token in " + path.string() +
                             " (is the auth module loaded, and was the database empty at start?)");
  return token;
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

StderrCapture::StderrCapture() {
  std::fflush(stderr);
  int fd = ::open((dir_.path() / "stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create a file to capture stderr");
  saved_ = ::dup(2);
  ::dup2(fd, 2);
  ::close(fd);
}

StderrCapture::~StderrCapture() {
  std::fflush(stderr);
  if (saved_ >= 0) {
    ::dup2(saved_, 2);
    ::close(saved_);
  }
}

std::string StderrCapture::text() const {
  std::fflush(stderr);
  std::ifstream in(dir_.path() / "stderr.log", std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace neurod::test
