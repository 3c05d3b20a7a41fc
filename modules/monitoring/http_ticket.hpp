// Capability tickets for the job HTTP proxy (README "Job HTTP proxy", tickets): a short-
// lived, signed path segment `~t.TICKET` under /api/v1/jobs/JOB/http/ that stands for
// "USER may open JOB's HTTP port until EXP". The browser's sandboxed job pages carry no
// cookies, so their images, scripts and fetch calls are authorised by the ticket that
// relative links inherit from the page's URL.
//
//   TICKET = EXP "." base64url(USER) "." base64url(HMAC-SHA256(key, "neurod-http-ticket-1\n" JOB "\n" USER "\n" EXP))
//
// EXP is the expiry in whole seconds since the epoch. The job id is bound by the MAC, not
// carried. The key is 32 random bytes in <data_dir>/monitoring/http-ticket.key (0600,
// made on first start); deleting it ends every ticket. A valid MAC and expiry are not the
// whole check: the caller must also find USER still existing and still allowed to read JOB.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace neurod::monitoring {

struct TicketCheck {
  enum class Result { ok, malformed, forged, expired };
  Result result = Result::malformed;
  std::string user;                // set when ok
  std::int64_t expires_at_ms = 0;  // set when ok or expired
  bool ok() const { return result == Result::ok; }
};

class HttpTickets {
 public:
  // "~t.": the path segment's marker.
  static constexpr std::string_view kMarker = "~t.";

  explicit HttpTickets(const std::filesystem::path& key_file);  // loads or makes the key (core/secret_key.hpp)
  explicit HttpTickets(std::string key, int /*tag: a key given directly (tests)*/);

  // A ticket for `user` on `job_id`, good until expires_at_ms (rounded up to a second).
  std::string issue(std::string_view job_id, std::string_view user, std::int64_t expires_at_ms) const;
  // Checks the MAC (for this job) and then the expiry.
  TicketCheck verify(std::string_view ticket, std::string_view job_id, std::int64_t now_ms) const;

 private:
  std::string mac(std::string_view job_id, std::string_view user, std::string_view exp) const;
  std::string key_;
};

}  // namespace neurod::monitoring
