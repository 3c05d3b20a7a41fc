// The notifications module's pure parts: message text, the webhook signature, back-off,
// idempotency keys, target validation and masking, and the email's headers.
#include "core/errors.hpp"
#include "modules/notifications/channels.hpp"
#include "modules/notifications/model.hpp"

#include <doctest/doctest.h>

using namespace neurod;
using namespace neurod::notifications;
using nlohmann::json;

namespace {

Event failed_job() {
  return {"job.status:42", "job.status",
          json{{"job_id", "job-abc"},
               {"name", "train-1"},
               {"owner", "alice"},
               {"project", "alice"},
               {"status", "failed"},
               {"reason", "Error"},
               {"description", "boom"},
               {"exit_code", 3},
               {"time", "2026-12-06T16:00:00.000Z"}}};
}

}  // namespace

TEST_CASE("notifications: a failed job's message names the job, its status, reason and exit code") {
  auto m = render(failed_job());
  CHECK(m.subject == "[neurod] Job train-1 (job-abc) failed (Error, exit code 3)");
  CHECK(m.body.find("Job train-1 (job-abc) is now failed.") == 0);
  CHECK(m.body.find("Exit code:   3\n") != std::string::npos);
  CHECK(m.body.find("Description: boom\n") != std::string::npos);
  CHECK(m.body.find("neuro status job-abc") != std::string::npos);
}

TEST_CASE("notifications: each event kind has its own subject") {
  Event e{"x", "job.cannot_start", json{{"job_id", "job-1"}, {"reason", "quota"}, {"description", "no seat"}}};
  CHECK(render(e).subject == "[neurod] Job job-1 cannot start: a quota is reached");
  e.data["reason"] = "capacity";
  CHECK(render(e).subject == "[neurod] Job job-1 cannot start: not enough free resources");
  Event q{"y", "quota.threshold",
          json{{"subject_kind", "project"}, {"subject", "ml"}, {"resource", "gpu_hours"}, {"percent", 80},
               {"used", 8.0}, {"limit", 10.0}, {"time", 1700000000000}}};
  CHECK(render(q).subject == "[neurod] The project ml reached 80% of its GPU-hours quota");
  CHECK(render(q).body.find("Used:        8.00") != std::string::npos);
  q.data["percent"] = 100;
  CHECK(render(q).subject == "[neurod] The project ml used up 100% of its GPU-hours quota");
  Event l{"z", "job.life_span_ending", json{{"job_id", "job-2"}, {"seconds_left", 540}, {"max_run_time_minutes", 60}}};
  CHECK(render(l).subject == "[neurod] Job job-2 reaches the end of its life span in 9 min");
  // A subject never carries a line break (header injection).
  Event evil{"w", "job.status", json{{"job_id", "job-3"}, {"name", "a\r\nBcc: x@y"}, {"status", "failed"}}};
  CHECK(render(evil).subject.find('\n') == std::string::npos);
  CHECK(render(evil).subject.find('\r') == std::string::npos);
}

TEST_CASE("notifications: Slack and webhook payloads") {
  auto slack = slack_payload(failed_job());
  REQUIRE(slack.is_object());
  CHECK(slack.size() == 1);
  CHECK(slack["text"].get<std::string>().rfind("*[neurod] Job train-1 (job-abc) failed", 0) == 0);
  auto hook = webhook_payload(failed_job(), "k1");
  CHECK(hook["id"] == "job.status:42");
  CHECK(hook["type"] == "job.status");
  CHECK(hook["delivery"] == "k1");
  CHECK(hook["data"]["exit_code"] == 3);
}

TEST_CASE("notifications: the signature is HMAC-SHA256 over timestamp.body, as Python's hmac computes it") {
  // python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test', b'1700000000.{\"a\":1}', hashlib.sha256).hexdigest())"
  CHECK(sign("whsec_test", 1700000000, R"({"a":1})") ==
        "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
  CHECK(sign("whsec_test", 1700000001, R"({"a":1})") != sign("whsec_test", 1700000000, R"({"a":1})"));
  CHECK(sign("other", 1700000000, R"({"a":1})") != sign("whsec_test", 1700000000, R"({"a":1})"));
  auto s = new_secret();
  CHECK(s.rfind("whsec_", 0) == 0);
  CHECK(s.size() == 6 + 64);
  CHECK(new_secret() != s);
}

TEST_CASE("notifications: back-off doubles from the initial wait and stops at the maximum") {
  using std::chrono::milliseconds;
  Duration initial = milliseconds(1000), max = milliseconds(30000);
  CHECK(backoff(1, initial, max) == milliseconds(1000));
  CHECK(backoff(2, initial, max) == milliseconds(2000));
  CHECK(backoff(3, initial, max) == milliseconds(4000));
  CHECK(backoff(5, initial, max) == milliseconds(16000));
  CHECK(backoff(6, initial, max) == milliseconds(30000));
  CHECK(backoff(1000, initial, max) == milliseconds(30000));
  CHECK(backoff(0, initial, max) == milliseconds(1000));
}

TEST_CASE("notifications: idempotency keys are stable per event, subscription and recipient") {
  // hashlib.sha256(b'job.status:42\nnsub-1\nhttp://x/').hexdigest()[:32]
  CHECK(idempotency_key("job.status:42", "nsub-1", "http://x/") == "f5e930676208ed56fcb1c5afb1387669");
  CHECK(idempotency_key("job.status:42", "nsub-1", "http://x/") == idempotency_key("job.status:42", "nsub-1", "http://x/"));
  CHECK(idempotency_key("job.status:43", "nsub-1", "http://x/") != idempotency_key("job.status:42", "nsub-1", "http://x/"));
  CHECK(idempotency_key("job.status:42", "nsub-2", "http://x/") != idempotency_key("job.status:42", "nsub-1", "http://x/"));
  CHECK(idempotency_key("job.status:42", "default", "a@b.c") != idempotency_key("job.status:42", "default", "d@b.c"));
}

TEST_CASE("notifications: targets are validated") {
  CHECK_NOTHROW(validate_url("target", "http://127.0.0.1:8080/hook"));
  CHECK_NOTHROW(validate_url("target", "https://hooks.slack.com/services/T0/B0/XYZ"));
  CHECK_NOTHROW(validate_url("target", "http://[::1]:9/x"));
  const std::vector<std::string> bad_urls{"", "ftp://x/", "file:///etc/passwd", "http://", "http:///x", "http://a b/",
                          "http://user:pw@host/", "http://host:99999/", "http://host:/", "javascript:alert(1)",
                          "http://host/\r\nX: y", std::string("http://h/") + std::string(3000, 'a')};
  for (const auto& bad : bad_urls) {
    CAPTURE(bad);
    CHECK_THROWS_AS(validate_url("target", bad), Error);
  }
  CHECK_NOTHROW(validate_email("target", "alice@example.com"));
  for (std::string bad : {"", "alice", "@x.y", "a@", "a@@b", "a b@c.d", "Alice <a@b.c>", "a@b.c, d@e.f", "a@b..c",
                          "a@b.c\r\nBcc: x@y"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(validate_email("target", bad), Error);
  }
}

TEST_CASE("notifications: URLs are masked in listings and logs (a Slack URL is a secret)") {
  CHECK(mask_url("https://hooks.slack.com/services/T0/B0/SECRET") == "https://hooks.slack.com/…");
  CHECK(mask_url("http://127.0.0.1:8080/hook?token=x") == "http://127.0.0.1:8080/…");
  CHECK(mask_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
  CHECK(shown_target("email", "a@b.c") == "a@b.c");
  CHECK(shown_target("slack", "https://hooks.slack.com/services/T0/B0/SECRET").find("SECRET") == std::string::npos);
}

TEST_CASE("notifications: the email carries Message-ID and X-Neurod-Delivery with the idempotency key") {
  SmtpSettings smtp;
  smtp.from = "neurod@example.org";
  Message m{"[neurod] Jöb done", "line 1\nline 2\n"};
  auto text = email_text(smtp, "alice@example.com", m, "abc123", 1700000000000);
  CHECK(text.find("From: neurod@example.org\r\n") != std::string::npos);
  CHECK(text.find("To: alice@example.com\r\n") != std::string::npos);
  CHECK(text.find("Message-ID: <abc123@example.org>\r\n") != std::string::npos);
  CHECK(text.find("X-Neurod-Delivery: abc123\r\n") != std::string::npos);
  CHECK(text.find("Subject: =?UTF-8?B?") != std::string::npos);  // not ASCII: an encoded word
  CHECK(text.find("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") != std::string::npos);
  CHECK(text.find("\r\n\r\nline 1\r\nline 2\r\n") != std::string::npos);
}
