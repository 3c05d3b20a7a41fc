// The public face of `auth` for every other module (DESIGN §1: "jobs asks
// auth::Authorizer"): who may do what, answered in-process from one immutable snapshot
// of the identity data (principals, tokens, grants), replaced as a whole on every change.
// Checks never touch the database; they are the hot path of every request.
#pragma once

#include "http/types.hpp"
#include "modules/auth/permissions.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace neurod::auth {

struct PrincipalInfo {
  std::string name;
  std::string kind;  // user | service | role
  std::string email;
  std::string owner;  // service accounts and user-made roles: who made them
  bool builtin = false;
  bool has_password = false;
  std::int64_t created_at = 0;
};

struct TokenInfo {
  std::string id;
  std::string principal;
  std::string kind;  // session | api | service | bootstrap
  std::string name;
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;  // epoch ms; none = never
  std::string hash;                        // SHA-256 of the value, hex; never shown
};

// Tokens are found by the first 16 hex digits of their hash, then the whole hash is
// compared in constant time: the lookup's timing can reveal no more than that prefix of
// a hash, which does not help anyone guess a token.
inline std::string token_key(std::string_view hash) { return std::string(hash.substr(0, 16)); }

// One consistent view; never changed once published.
struct State {
  std::int64_t version = 0;
  std::unordered_map<std::string, PrincipalInfo> principals;
  std::unordered_multimap<std::string, TokenInfo> tokens;  // by token_key(hash)
  std::shared_ptr<const GrantSet> grants = std::make_shared<GrantSet>();
};

// The built-in role every admin holds; it has manage on every scheme's root.
inline constexpr std::string_view kAdminRole = "cluster/admin";

class Authorizer {
 public:
  explicit Authorizer(std::string cluster);
  ~Authorizer();
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  const std::string& cluster() const { return cluster_; }

  // The effective action of an authenticated principal on a canonical URI; anonymous
  // principals and unknown names get deny.
  Action effective(const http::Principal& who, std::string_view uri) const;
  bool allowed(const http::Principal& who, std::string_view uri, Action a) const;
  std::vector<Requirement> missing(const http::Principal& who, std::span<const Requirement> required) const;
  // Throws Error(forbidden) with details {"missing": [{uri, action} | [...]]} unless every
  // requirement is met.
  void require(const http::Principal& who, std::span<const Requirement> required) const;
  void require(const http::Principal& who, std::string_view uri, Action a) const;
  // manage on cluster://{cluster}: the admin role.
  bool is_admin(const http::Principal& who) const;
  void require_admin(const http::Principal& who) const;

  // Where the principal's relative URIs resolve: its personal project (a service
  // account's is its owner's).
  UriContext context_for(const http::Principal& who) const;
  Uri parse_uri(std::string_view text, const http::Principal& who) const;
  // "job://{cluster}/{project}" and friends.
  std::string resource_uri(std::string_view scheme, std::string_view project, std::string_view path = {}) const;

  std::shared_ptr<const PermissionTree> tree_of(std::string_view principal) const;
  // The roles a principal holds (transitively) that exist as role principals.
  std::vector<std::string> held_roles(std::string_view principal) const;

  // The module's side: the current snapshot, and publishing a new one.
  std::shared_ptr<const State> state() const;
  void publish(std::shared_ptr<const State> next);
  // The principal a token value stands for, if it is known and not expired.
  std::optional<http::Principal> authenticate_token(std::string_view token, std::int64_t now_ms) const;
  // Whether the token a principal was authenticated with (Principal::credential, a token
  // id) still authenticates it: not revoked, not expired, its principal not removed. For
  // long-lived streams, which authenticated once; a scan of the tokens, so callers check
  // when state()->version moved or now and then, not per message.
  bool still_authenticated(const http::Principal& who, std::int64_t now_ms) const;

 private:
  // The snapshot for this thread: a thread-local copy refreshed when the generation
  // moves, so a check costs no atomic reference counting.
  const State& current() const;

  std::string cluster_;
  std::atomic<std::shared_ptr<const State>> state_;
  std::atomic<std::uint64_t> generation_{0};
};

nlohmann::json to_json(const Permission& p);
nlohmann::json to_json(std::span<const Requirement> missing);

}  // namespace neurod::auth
