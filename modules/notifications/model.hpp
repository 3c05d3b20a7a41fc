// The notifications module's pure parts (README.md here): event kinds, message text,
// the webhook signature, back-off, idempotency keys, target validation and masking.
// No database and no network, so tests/unit/notifications checks them directly.
#pragma once

#include "core/units.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurod::notifications {

// The event topics a subscription can choose (README "Events").
inline constexpr std::string_view kJobStatus = "job.status";
inline constexpr std::string_view kJobCannotStart = "job.cannot_start";
inline constexpr std::string_view kQuotaThreshold = "quota.threshold";
inline constexpr std::string_view kLifeSpanEnding = "job.life_span_ending";
inline constexpr std::string_view kTest = "notification.test";
const std::vector<std::string>& event_kinds();
bool is_event_kind(std::string_view s);
// The statuses job.status may be filtered by, and the default (the finished ones).
const std::vector<std::string>& job_statuses();
const std::vector<std::string>& default_statuses();

inline constexpr std::string_view kEmail = "email";
inline constexpr std::string_view kSlack = "slack";
inline constexpr std::string_view kWebhook = "webhook";

// An event as the module handles it: a stable id (the idempotency key's first part),
// its topic and the publisher's data.
struct Event {
  std::string id;     // "job.status:42", "job.cannot_start:job-…:quota", …
  std::string topic;
  nlohmann::json data;
};

struct Message {
  std::string subject;  // one line, no CR/LF
  std::string body;     // plain text, '\n' line ends
};
// The human-readable text of an event for email and Slack.
Message render(const Event& e);

// What a webhook receives: {"id", "type", "delivery", "subject", "text", "data"}.
nlohmann::json webhook_payload(const Event& e, const std::string& delivery_key);
// What a Slack incoming webhook receives: {"text": "*subject*\nbody"}.
nlohmann::json slack_payload(const Event& e);

// The webhook signature (README "Webhook signature"): hex HMAC-SHA256 with the
// subscription's secret over "<timestamp>.<body>"; sent as "sha256=<hex>".
std::string sign(std::string_view secret, std::int64_t timestamp, std::string_view body);
// A new webhook secret: "whsec_" and 64 hex chars.
std::string new_secret();

// The wait before attempt `attempt` + 1 after `attempt` failed ones (attempt >= 1):
// initial × 2^(attempt−1), at most max.
Duration backoff(int attempt, Duration initial, Duration max);

// The idempotency key of one delivery: the same event, subscription and recipient always
// give the same key (hex SHA-256, 32 chars), so a repeat enqueue is dropped.
std::string idempotency_key(std::string_view event_id, std::string_view subscription_id, std::string_view target);

// Throws Error(bad_request) saying what is wrong. URLs: http(s) with a host, at most
// 2048 chars, no spaces or control characters. Email: one address, no display name.
void validate_url(std::string_view field, std::string_view url);
void validate_email(std::string_view field, std::string_view address);
// A URL for listings and logs: scheme, host and port, the rest (which may be a token, as
// in Slack's hooks.slack.com/services/T…/B…/SECRET) replaced by "…".
std::string mask_url(std::string_view url);
// The target as shown: masked for slack and webhook, as is for email.
std::string shown_target(std::string_view channel, std::string_view target);

// RFC 3339 UTC with milliseconds, as the jobs API writes times.
std::string format_time(std::int64_t ms);

// Removes CR and LF (header injection) and trims to `max` bytes.
std::string one_line(std::string_view s, std::size_t max = 200);

}  // namespace neurod::notifications
