// Sending one delivery over libcurl (README "Channels"): an HTTP(S) POST for webhooks
// and Slack, SMTP for email. Blocking; called from the delivery worker's thread only.
// Error texts never carry the target URL's path or query (a Slack URL is a secret).
#pragma once

#include "core/units.hpp"
#include "modules/notifications/model.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace neurod::notifications {

struct SendResult {
  bool ok = false;
  std::optional<int> status;  // the HTTP or SMTP response code, when one came
  std::string error;          // empty when ok
};

// Once per process, before any thread sends (libcurl's global init is not thread-safe).
void init_curl();

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// POSTs `body` as application/json; 2xx is success. No redirects are followed.
SendResult post_json(const std::string& url, const std::string& body, const HeaderList& headers, Duration timeout);

struct SmtpSettings {
  std::string url;  // smtp://host:port (STARTTLS optional) or smtps://host:port
  std::string from;
  std::string username;
  std::string password;
  bool starttls = false;  // require STARTTLS on smtp://
  Duration timeout{10000};
};

// The RFC 5322 message for one email (CRLF line ends), for tests and send_email.
std::string email_text(const SmtpSettings& smtp, const std::string& to, const Message& m, const std::string& key,
                       std::int64_t now_ms);
SendResult send_email(const SmtpSettings& smtp, const std::string& to, const Message& m, const std::string& key);

}  // namespace neurod::notifications
