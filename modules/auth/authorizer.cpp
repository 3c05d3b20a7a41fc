#include "modules/auth/authorizer.hpp"

#include "core/secret_key.hpp"
#include "modules/auth/crypto.hpp"

namespace neurod::auth {

namespace {
// Generations are unique across every Authorizer in the process, so a thread-local
// cache keyed by (owner, generation) can never confuse two instances.
std::atomic<std::uint64_t> g_generations{0};

struct ThreadCache {
  const Authorizer* owner = nullptr;
  std::uint64_t generation = 0;
  std::shared_ptr<const State> state;
};
thread_local ThreadCache t_cache;
}  // namespace

Authorizer::Authorizer(std::string cluster) : cluster_(std::move(cluster)) {
  state_.store(std::make_shared<const State>());
  generation_.store(++g_generations);
}

Authorizer::~Authorizer() {
  if (t_cache.owner == this) t_cache = {};
}

std::shared_ptr<const State> Authorizer::state() const { return state_.load(); }

void Authorizer::publish(std::shared_ptr<const State> next) {
  state_.store(std::move(next));
  generation_.store(++g_generations, std::memory_order_release);
}

const State& Authorizer::current() const {
  auto gen = generation_.load(std::memory_order_acquire);
  if (t_cache.owner != this || t_cache.generation != gen) {
    t_cache.state = state_.load();
    t_cache.owner = this;
    t_cache.generation = gen;
  }
  return *t_cache.state;
}

Action Authorizer::effective(const http::Principal& who, std::string_view uri) const {
  if (!who.authenticated()) return Action::deny;
  return current().grants->tree_of(who.name)->effective(uri);
}

bool Authorizer::allowed(const http::Principal& who, std::string_view uri, Action a) const {
  if (!who.authenticated()) return false;
  return current().grants->tree_of(who.name)->allows(uri, a);
}

std::vector<Requirement> Authorizer::missing(const http::Principal& who, std::span<const Requirement> required) const {
  if (!who.authenticated()) return {required.begin(), required.end()};
  return current().grants->tree_of(who.name)->missing(required);
}

nlohmann::json to_json(const Permission& p) { return {{"uri", p.uri}, {"action", to_string(p.action)}}; }

nlohmann::json to_json(std::span<const Requirement> missing) {
  auto out = nlohmann::json::array();
  for (const auto& r : missing) {
    if (r.size() == 1) {
      out.push_back(to_json(r.front()));
    } else {
      auto alt = nlohmann::json::array();
      for (const auto& p : r) alt.push_back(to_json(p));
      out.push_back(std::move(alt));
    }
  }
  return out;
}

void Authorizer::require(const http::Principal& who, std::span<const Requirement> required) const {
  auto miss = missing(who, required);
  if (miss.empty()) return;
  const auto& first = miss.front().front();
  std::string msg = "permission denied: " + std::string(to_string(first.action)) + " on " + first.uri + " is required";
  if (miss.size() > 1 || miss.front().size() > 1) msg += " (see 'missing' for everything that is)";
  throw Error(errc::forbidden, msg, {{"missing", to_json(miss)}});
}

void Authorizer::require(const http::Principal& who, std::string_view uri, Action a) const {
  Requirement r{Permission{std::string(uri), a}};
  require(who, std::span<const Requirement>(&r, 1));
}

bool Authorizer::is_admin(const http::Principal& who) const {
  return allowed(who, "cluster://" + cluster_, Action::manage);
}

void Authorizer::require_admin(const http::Principal& who) const {
  if (!is_admin(who))
    throw Error(errc::forbidden, "this needs a cluster administrator (manage on cluster://" + cluster_ + ")",
                {{"missing", nlohmann::json::array({{{"uri", "cluster://" + cluster_}, {"action", "manage"}}})}});
}

UriContext Authorizer::context_for(const http::Principal& who) const {
  UriContext ctx{cluster_, who.name};
  const auto& st = current();
  if (auto it = st.principals.find(who.name); it != st.principals.end() && it->second.kind == "service")
    ctx.project = it->second.owner;
  return ctx;
}

Uri Authorizer::parse_uri(std::string_view text, const http::Principal& who) const {
  auto ctx = context_for(who);
  return Uri::parse(text, &ctx);
}

std::string Authorizer::resource_uri(std::string_view scheme, std::string_view project, std::string_view path) const {
  std::string out;
  out.reserve(scheme.size() + cluster_.size() + project.size() + path.size() + 6);
  out.append(scheme).append("://").append(cluster_).append("/").append(project);
  if (!path.empty()) out.append("/").append(path);
  return out;
}

std::shared_ptr<const PermissionTree> Authorizer::tree_of(std::string_view principal) const {
  return current().grants->tree_of(principal);
}

std::vector<std::string> Authorizer::held_roles(std::string_view principal) const {
  const auto& st = current();
  std::vector<std::string> out;
  for (auto& r : st.grants->roles_of(principal)) {
    auto it = st.principals.find(r);
    if (it != st.principals.end() && it->second.kind == "role") out.push_back(std::move(r));
  }
  return out;
}

std::optional<http::Principal> Authorizer::authenticate_token(std::string_view token, std::int64_t now_ms) const {
  if (!looks_like_token(token)) return std::nullopt;
  auto hash = token_hash(token);
  const auto& st = current();
  const TokenInfo* found = nullptr;
  auto [first, last] = st.tokens.equal_range(token_key(hash));
  for (auto it = first; it != last; ++it)
    if (keys::constant_time_equal(it->second.hash, hash)) found = &it->second;
  if (!found) return std::nullopt;
  const auto& t = *found;
  if (t.expires_at && *t.expires_at <= now_ms) return std::nullopt;
  auto p = st.principals.find(t.principal);
  if (p == st.principals.end()) return std::nullopt;
  http::Principal out;
  out.name = t.principal;
  out.kind = p->second.kind == "service" ? "service" : "user";
  out.credential = t.id;
  return out;
}

bool Authorizer::still_authenticated(const http::Principal& who, std::int64_t now_ms) const {
  if (!who.authenticated() || who.credential.empty()) return false;
  const auto& st = current();
  if (!st.principals.contains(who.name)) return false;
  for (const auto& [key, t] : st.tokens)
    if (t.id == who.credential) return t.principal == who.name && !(t.expires_at && *t.expires_at <= now_ms);
  return false;
}

}  // namespace neurod::auth
