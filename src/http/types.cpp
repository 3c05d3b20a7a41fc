#include "http/types.hpp"

#include <unistd.h>

#include <strings.h>

#include <cctype>
#include <thread>

namespace neurod::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view to_string(Method m) {
  switch (m) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
    case Method::options: return "OPTIONS";
  }
  return "GET";
}

std::optional<Method> parse_method(std::string_view s) {
  for (auto m : {Method::get, Method::head, Method::post, Method::put, Method::patch, Method::del, Method::options})
    if (s == to_string(m)) return m;
  return std::nullopt;
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : items_)
    if (iequals(k, name)) out.emplace_back(v);
  return out;
}

void Headers::set(std::string name, std::string value) {
  remove(name);
  items_.emplace_back(std::move(name), std::move(value));
}

void Headers::add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }

void Headers::remove(std::string_view name) {
  std::erase_if(items_, [&](const auto& kv) { return iequals(kv.first, name); });
}

const std::string& Request::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  throw Error(errc::internal, "route has no path parameter '" + std::string(name) + "'");
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return v;
  return std::nullopt;
}

std::vector<std::string> Request::query_params(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : query)
    if (k == name) out.push_back(v);
  return out;
}

nlohmann::json Request::json() const {
  if (body.empty()) throw Error(errc::bad_request, "a JSON request body is required");
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(errc::bad_request, "malformed JSON body at byte " + std::to_string(e.byte) + ": " +
                                       std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  }
}

Response Response::json(const nlohmann::json& value, int status) {
  Response r;
  r.status = status;
  r.body = value.dump();
  r.headers.set("Content-Type", "application/json");
  return r;
}

Response Response::text(std::string body, int status, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.set("Content-Type", std::move(content_type));
  return r;
}

Response Response::no_content() {
  Response r;
  r.status = 204;
  return r;
}

Response Response::from_file(std::filesystem::path path, std::string content_type) {
  Response r;
  r.kind = Kind::file;
  r.file = std::move(path);
  r.headers.set("Content-Type", std::move(content_type));
  return r;
}

Response Response::from_fd(int fd, std::string content_type) {
  Response r;
  r.kind = Kind::file;
  r.file_fd = std::shared_ptr<int>(new int(fd), [](int* p) {
    if (*p >= 0) ::close(*p);
    delete p;
  });
  r.headers.set("Content-Type", std::move(content_type));
  return r;
}

Response Response::stream(std::string content_type, std::shared_ptr<StreamSource> source) {
  Response r;
  r.kind = Kind::stream;
  r.stream_source = std::move(source);
  r.headers.set("Content-Type", std::move(content_type));
  return r;
}

namespace {
// Runs a finite producer on its own thread so that it never holds an I/O thread.
class FunctionSource : public StreamSource {
 public:
  explicit FunctionSource(std::function<void(StreamWriter&)> fn) : fn_(std::move(fn)) {}
  void start(std::shared_ptr<StreamWriter> writer) override {
    std::thread([fn = fn_, writer] {
      try {
        fn(*writer);
        writer->close();
      } catch (...) {
        // The status line is gone already; only a truncated body can tell the client.
        writer->abort();
      }
    }).detach();
  }

 private:
  std::function<void(StreamWriter&)> fn_;
};
}  // namespace

Response Response::stream(std::string content_type, std::function<void(StreamWriter&)> producer) {
  return stream(std::move(content_type), std::make_shared<FunctionSource>(std::move(producer)));
}

std::string redact_capabilities(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  auto starts_ci = [&](std::size_t at, std::string_view what) {
    if (in.size() - at < what.size()) return false;
    for (std::size_t k = 0; k < what.size(); ++k)
      if (std::tolower(static_cast<unsigned char>(in[at + k])) != what[k]) return false;
    return true;
  };
  std::size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if (c == '?' || c == '#') {
      out.append(in.substr(i));
      break;
    }
    out.push_back(c);
    ++i;
    if (c != '/') continue;
    std::size_t skip = starts_ci(i, "~t.") ? 3 : starts_ci(i, "%7et.") ? 5 : 0;
    if (!skip) continue;
    out += "~t.\u2026";
    i += skip;
    while (i < in.size() && in[i] != '/' && in[i] != '?' && in[i] != '#') ++i;
  }
  return out;
}

}  // namespace neurod::http
