#include "modules/monitoring/http_ticket.hpp"

#include "core/errors.hpp"
#include "core/secret_key.hpp"

#include <algorithm>

namespace neurod::monitoring {

HttpTickets::HttpTickets(const std::filesystem::path& key_file) : key_(keys::load_or_make(key_file, 32)) {}

HttpTickets::HttpTickets(std::string key, int) : key_(std::move(key)) {
  if (key_.size() < 16) throw Error(errc::internal, "the HTTP ticket key is too short");
}

std::string HttpTickets::mac(std::string_view job_id, std::string_view user, std::string_view exp) const {
  std::string data = "neurod-http-ticket-1\n";
  data.append(job_id).append("\n").append(user).append("\n").append(exp);
  return keys::hmac_sha256(key_, data);
}

std::string HttpTickets::issue(std::string_view job_id, std::string_view user, std::int64_t expires_at_ms) const {
  auto exp = std::to_string((std::max<std::int64_t>(expires_at_ms, 0) + 999) / 1000);
  return exp + "." + keys::base64url(user) + "." + keys::base64url(mac(job_id, user, exp));
}

TicketCheck HttpTickets::verify(std::string_view ticket, std::string_view job_id, std::int64_t now_ms) const {
  TicketCheck out;
  if (ticket.size() > 1024) return out;
  auto d1 = ticket.find('.');
  if (d1 == std::string_view::npos) return out;
  auto d2 = ticket.find('.', d1 + 1);
  if (d2 == std::string_view::npos || ticket.find('.', d2 + 1) != std::string_view::npos) return out;
  auto exp = ticket.substr(0, d1);
  if (exp.empty() || exp.size() > 12 ||
      !std::all_of(exp.begin(), exp.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return out;
  auto user = keys::unbase64url(ticket.substr(d1 + 1, d2 - d1 - 1));
  auto sig = keys::unbase64url(ticket.substr(d2 + 1));
  if (!user || !sig || user->empty()) return out;
  if (!keys::constant_time_equal(*sig, mac(job_id, *user, exp))) {
    out.result = TicketCheck::Result::forged;
    return out;
  }
  out.expires_at_ms = std::stoll(std::string(exp)) * 1000;
  if (out.expires_at_ms <= now_ms) {
    out.result = TicketCheck::Result::expired;
    return out;
  }
  out.result = TicketCheck::Result::ok;
  out.user = std::move(*user);
  return out;
}

}  // namespace neurod::monitoring
