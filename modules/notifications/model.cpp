#include "modules/notifications/model.hpp"

#include "core/errors.hpp"
#include "core/ids.hpp"
#include "core/times.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>

namespace neurod::notifications {

namespace {

using nlohmann::json;

std::string str(const json& d, const char* key) {
  auto it = d.find(key);
  if (it == d.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char k[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += k[p[i] >> 4];
    out += k[p[i] & 15];
  }
  return out;
}

// "train-1 (job-3f…)" or "job-3f…".
std::string job_label(const json& d) {
  auto name = str(d, "name");
  auto id = str(d, "job_id");
  return name.empty() ? id : fmt::format("{} ({})", name, id);
}

std::string quota_resource(const std::string& r) {
  if (r == "cpu_hours") return "CPU-hours";
  if (r == "gpu_hours") return "GPU-hours";
  if (r == "storage_bytes") return "storage";
  if (r == "running_jobs") return "running-jobs";
  return r;
}

std::string number(const json& v) {
  if (v.is_number_float()) return fmt::format("{:.2f}", v.get<double>());
  if (v.is_number()) return v.dump();
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string time_text(const json& d) {
  auto it = d.find("time");
  if (it == d.end() || it->is_null()) return {};
  if (it->is_number()) return format_time(it->get<std::int64_t>());
  return str(d, "time");
}

}  // namespace

const std::vector<std::string>& event_kinds() {
  static const std::vector<std::string> k{std::string(kJobStatus), std::string(kJobCannotStart),
                                          std::string(kQuotaThreshold), std::string(kLifeSpanEnding)};
  return k;
}

bool is_event_kind(std::string_view s) {
  const auto& k = event_kinds();
  return std::find(k.begin(), k.end(), s) != k.end();
}

const std::vector<std::string>& job_statuses() {
  static const std::vector<std::string> k{"pending", "running", "suspended", "succeeded", "failed", "cancelled"};
  return k;
}

const std::vector<std::string>& default_statuses() {
  static const std::vector<std::string> k{"succeeded", "failed", "cancelled"};
  return k;
}

Message render(const Event& e) {
  const auto& d = e.data;
  Message m;
  std::string body;
  auto line = [&](const char* label, const std::string& value) {
    if (!value.empty()) body += fmt::format("{:<13}{}\n", std::string(label) + ":", value);
  };
  if (e.topic == kJobStatus) {
    auto status = str(d, "status");
    auto reason = str(d, "reason");
    std::string why;
    if (!reason.empty()) why = reason;
    if (!d.value("exit_code", json()).is_null())
      why += (why.empty() ? "" : ", ") + fmt::format("exit code {}", str(d, "exit_code"));
    m.subject = fmt::format("[neurod] Job {} {}{}", job_label(d), status, why.empty() ? "" : " (" + why + ")");
    body = fmt::format("Job {} is now {}.\n\n", job_label(d), status);
    line("Job", str(d, "job_id"));
    line("Name", str(d, "name"));
    line("Owner", str(d, "owner"));
    line("Project", str(d, "project"));
    line("Status", status);
    line("Reason", reason);
    line("Description", str(d, "description"));
    if (!d.value("exit_code", json()).is_null()) line("Exit code", str(d, "exit_code"));
    line("Time", time_text(d));
    body += fmt::format("\nSee it with: neuro status {}\n", str(d, "job_id"));
  } else if (e.topic == kJobCannotStart) {
    auto reason = str(d, "reason");
    auto what = reason == "quota" ? "a quota is reached" : "not enough free resources";
    m.subject = fmt::format("[neurod] Job {} cannot start: {}", job_label(d), what);
    body = fmt::format("Job {} is waiting and cannot start now: {}.\n\n", job_label(d), what);
    line("Job", str(d, "job_id"));
    line("Owner", str(d, "owner"));
    line("Project", str(d, "project"));
    line("Reason", reason);
    line("Details", str(d, "description"));
    line("Time", time_text(d));
    body += "\nIt starts by itself once there is room, unless its schedule timeout passes first.\n";
  } else if (e.topic == kQuotaThreshold) {
    auto res = quota_resource(str(d, "resource"));
    auto pct = str(d, "percent");
    m.subject = fmt::format("[neurod] The {} {} {} {}% of its {} quota", str(d, "subject_kind"), str(d, "subject"),
                            pct == "100" ? "used up" : "reached", pct, res);
    body = fmt::format("The {} {} has used {}% of its {} quota.\n\n", str(d, "subject_kind"), str(d, "subject"), pct,
                       res);
    line("Used", number(d.value("used", json())));
    line("Limit", number(d.value("limit", json())));
    line("Time", time_text(d));
    body += pct == "100" ? "\nJobs that need it cannot start (running ones are stopped) until the quota is raised or "
                           "its period renews.\n"
                         : "\nAsk an administrator to raise it if you need more.\n";
  } else if (e.topic == kLifeSpanEnding) {
    auto secs = d.value("seconds_left", std::int64_t(0));
    auto mins = (secs + 59) / 60;
    m.subject = fmt::format("[neurod] Job {} reaches the end of its life span in {} min", job_label(d), mins);
    body = fmt::format("Job {} will be stopped (LifeSpanEnded) in about {} min: its life span is {} min.\n\n",
                       job_label(d), mins, str(d, "max_run_time_minutes"));
    line("Job", str(d, "job_id"));
    line("Owner", str(d, "owner"));
    line("Project", str(d, "project"));
    body += fmt::format("\nGive it more time with: neuro job bump-life-span {} 1h\n", str(d, "job_id"));
  } else if (e.topic == kTest) {
    m.subject = "[neurod] Test notification";
    body = fmt::format("This is a test notification for subscription {}, sent by {}.\n", str(d, "subscription_id"),
                       str(d, "requested_by"));
    body += "If you read this, the channel works.\n";
  } else {
    m.subject = fmt::format("[neurod] {}", e.topic);
    body = d.dump(2) + "\n";
  }
  m.subject = one_line(m.subject, 250);
  m.body = std::move(body);
  return m;
}

json webhook_payload(const Event& e, const std::string& delivery_key) {
  auto m = render(e);
  return {{"id", e.id},      {"type", e.topic},   {"delivery", delivery_key},
          {"subject", m.subject}, {"text", m.body}, {"data", e.data}};
}

json slack_payload(const Event& e) {
  auto m = render(e);
  return {{"text", "*" + m.subject + "*\n" + m.body}};
}

std::string sign(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  auto ts = std::to_string(timestamp) + ".";
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(ts.data()), ts.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  return hex(mac, sizeof mac);
}

std::string new_secret() { return "whsec_" + random_hex(32); }

Duration backoff(int attempt, Duration initial, Duration max) {
  if (attempt < 1) attempt = 1;
  auto ms = static_cast<double>(initial.count()) * std::pow(2.0, std::min(attempt - 1, 40));
  if (ms > static_cast<double>(max.count())) return max;
  return Duration(static_cast<Duration::rep>(ms));
}

std::string idempotency_key(std::string_view event_id, std::string_view subscription_id, std::string_view target) {
  std::string text = fmt::format("{}\n{}\n{}", event_id, subscription_id, target);
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return hex(h, 16);
}

void validate_url(std::string_view field, std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Error(errc::bad_request, fmt::format("{}: {}", field, why)).with_code("invalid_target");
  };
  if (url.empty()) throw bad("required: an http:// or https:// URL");
  if (url.size() > 2048) throw bad("too long (at most 2048 characters)");
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) throw bad("must not contain spaces or control characters");
  std::string_view rest;
  if (url.starts_with("https://"))
    rest = url.substr(8);
  else if (url.starts_with("http://"))
    rest = url.substr(7);
  else
    throw bad("must be an http:// or https:// URL");
  auto host_end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, host_end);
  if (authority.find('@') != std::string_view::npos) throw bad("must not carry a user name or password before the host");
  auto host = authority;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) throw bad("has an unterminated [IPv6] host");
    auto after = host.substr(close + 1);
    if (!after.empty() && (after.front() != ':' || after.size() == 1)) throw bad("has a malformed port");
    host = host.substr(0, close + 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    auto port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(std::string(port)) > 65535 || std::stoi(std::string(port)) == 0)
      throw bad("has a malformed port");
    host = host.substr(0, colon);
  }
  if (host.empty()) throw bad("needs a host");
}

void validate_email(std::string_view field, std::string_view a) {
  auto bad = [&](std::string_view why) {
    return Error(errc::bad_request, fmt::format("{}: {}", field, why)).with_code("invalid_target");
  };
  if (a.empty()) throw bad("required: an email address such as alice@example.com");
  if (a.size() > 254) throw bad("too long (at most 254 characters)");
  for (unsigned char c : a)
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '(' || c == ')' ||
        c == '\\')
      throw bad("must be one plain address such as alice@example.com (no name, spaces or lists)");
  auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= a.size() || a.find('@') != at)
    throw bad("must be one address such as alice@example.com");
  auto domain = a.substr(at + 1);
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos)
    throw bad("has a malformed domain");
}

std::string mask_url(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return "…";
  auto rest = url.substr(scheme + 3);
  auto end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string out = std::string(url.substr(0, scheme + 3)) + std::string(authority);
  if (end != std::string_view::npos && end + 1 < rest.size()) out += "/…";
  return out;
}

std::string shown_target(std::string_view channel, std::string_view target) {
  if (channel == kEmail) return std::string(target);
  return mask_url(target);
}

std::string format_time(std::int64_t ms) { return format_rfc3339(ms * 1'000'000, 3); }

std::string one_line(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s) {
    if (c == '\r' || c == '\n') c = ' ';
    out += c;
  }
  if (out.size() > max) {
    out.resize(max);
    // Do not cut a UTF-8 sequence in half.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
  }
  return out;
}

}  // namespace neurod::notifications
