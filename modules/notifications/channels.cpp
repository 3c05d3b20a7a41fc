#include "modules/notifications/channels.hpp"

#include "core/times.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sodium.h>

#include <ctime>
#include <cstring>
#include <mutex>

namespace neurod::notifications {

namespace {

struct Curl {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  curl_slist* rcpt = nullptr;
  char err[CURL_ERROR_SIZE] = {0};
  ~Curl() {
    if (headers) curl_slist_free_all(headers);
    if (rcpt) curl_slist_free_all(rcpt);
    if (h) curl_easy_cleanup(h);
  }
};

std::size_t collect(char* p, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() < 4096) out->append(p, std::min(size * n, 4096 - out->size()));
  return size * n;
}

struct Reader {
  const std::string* text;
  std::size_t pos = 0;
};

std::size_t read_cb(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* r = static_cast<Reader*>(user);
  auto left = r->text->size() - r->pos;
  auto take = std::min(left, size * n);
  std::memcpy(buf, r->text->data() + r->pos, take);
  r->pos += take;
  return take;
}

long timeout_ms(Duration d) { return d.count() > 0 ? static_cast<long>(d.count()) : 10000L; }

std::string error_of(CURLcode rc, const char* buf) {
  // The error buffer names the host at most, never the path (which may hold a token).
  return buf && *buf ? std::string(buf) : std::string(curl_easy_strerror(rc));
}

std::string base64(std::string_view in) {
  std::string out(sodium_base64_encoded_len(in.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

std::string rfc2822_date(std::int64_t now_ms) {
  std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

SendResult post_json(const std::string& url, const std::string& body, const HeaderList& headers, Duration timeout) {
  Curl c;
  if (!c.h) return {false, std::nullopt, "cannot initialise libcurl"};
  std::string response;
  c.headers = curl_slist_append(c.headers, "Content-Type: application/json");
  c.headers = curl_slist_append(c.headers, "Expect:");
  for (const auto& [k, v] : headers) c.headers = curl_slist_append(c.headers, (k + ": " + v).c_str());
  curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(c.h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c.h, CURLOPT_POST, 1L);
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.headers);
  curl_easy_setopt(c.h, CURLOPT_USERAGENT, "neurod-notifications");
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS, timeout_ms(timeout));
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, c.err);
  auto rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) return {false, std::nullopt, error_of(rc, c.err)};
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300) return {true, static_cast<int>(code), ""};
  auto excerpt = one_line(response, 200);
  return {false, static_cast<int>(code),
          fmt::format("the receiver answered HTTP {}{}", code, excerpt.empty() ? "" : ": " + excerpt)};
}

std::string email_text(const SmtpSettings& smtp, const std::string& to, const Message& m, const std::string& key,
                       std::int64_t now_ms) {
  auto domain = smtp.from.substr(smtp.from.rfind('@') + 1);
  if (domain.empty() || domain == smtp.from) domain = "neurod.invalid";
  auto subject = one_line(m.subject, 250);
  if (!ascii(subject)) subject = "=?UTF-8?B?" + base64(subject) + "?=";
  std::string out;
  out += "Date: " + rfc2822_date(now_ms) + "\r\n";
  out += "From: " + one_line(smtp.from) + "\r\n";
  out += "To: " + one_line(to) + "\r\n";
  out += "Subject: " + subject + "\r\n";
  out += "Message-ID: <" + key + "@" + one_line(domain) + ">\r\n";
  out += "X-Neurod-Delivery: " + key + "\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: 8bit\r\n";
  out += "\r\n";
  for (char ch : m.body) {
    if (ch == '\r') continue;
    if (ch == '\n')
      out += "\r\n";
    else
      out += ch;
  }
  if (!out.ends_with("\r\n")) out += "\r\n";
  return out;
}

SendResult send_email(const SmtpSettings& smtp, const std::string& to, const Message& m, const std::string& key) {
  if (smtp.url.empty())
    return {false, std::nullopt, "no SMTP server is configured (modules.notifications.email.url)"};
  Curl c;
  if (!c.h) return {false, std::nullopt, "cannot initialise libcurl"};
  auto text = email_text(smtp, to, m, key, neurod::now_ms());
  Reader reader{&text, 0};
  curl_easy_setopt(c.h, CURLOPT_URL, smtp.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS, CURLPROTO_SMTP | CURLPROTO_SMTPS);
#endif
  if (smtp.starttls) curl_easy_setopt(c.h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!smtp.username.empty()) {
    curl_easy_setopt(c.h, CURLOPT_USERNAME, smtp.username.c_str());
    curl_easy_setopt(c.h, CURLOPT_PASSWORD, smtp.password.c_str());
  }
  auto from = "<" + smtp.from + ">";
  curl_easy_setopt(c.h, CURLOPT_MAIL_FROM, from.c_str());
  c.rcpt = curl_slist_append(c.rcpt, ("<" + to + ">").c_str());
  curl_easy_setopt(c.h, CURLOPT_MAIL_RCPT, c.rcpt);
  curl_easy_setopt(c.h, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(c.h, CURLOPT_READDATA, &reader);
  curl_easy_setopt(c.h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS, timeout_ms(smtp.timeout));
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, c.err);
  auto rc = curl_easy_perform(c.h);
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  std::optional<int> status = code ? std::optional<int>(static_cast<int>(code)) : std::nullopt;
  if (rc != CURLE_OK) return {false, status, error_of(rc, c.err)};
  return {true, status, ""};
}

}  // namespace neurod::notifications
