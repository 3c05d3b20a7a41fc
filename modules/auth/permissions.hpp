// The permission model (DESIGN §7, reference §3): resource URIs, ordered actions,
// per-principal permission trees with role expansion. Pure in-memory logic, no
// database and no HTTP: the Authorizer (authorizer.hpp) keeps one GrantSet snapshot
// and answers every request's checks from it.
//
// Semantics, in one place:
//  - URIs are "scheme://seg/seg/…"; "scheme:" and "scheme://" name the scheme's root.
//    Resource URIs put the cluster and project first: "job://{cluster}/{project}/{id}".
//  - Actions are ordered deny < list < read < write < manage. A grant of action A on a
//    URI allows every action <= A on that URI and its whole subtree.
//  - deny overrides: a deny grant on a URI or any ancestor (own or through a role)
//    refuses everything below it, whatever else is granted.
//  - Ancestors of a granted (non-denied) node are implicitly listable: a grant on
//    storage://c/p/data/x gives `list` on storage://c/p/data, storage://c/p, … up to the root.
//  - A principal holds role R when it has a grant of read or more on exactly role://R
//    (not through a subtree grant); it then has R's grants too, transitively, cycles ignored.
#pragma once

#include "core/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace neurod::auth {

enum class Action : std::uint8_t { deny = 0, list = 1, read = 2, write = 3, manage = 4 };

std::string_view to_string(Action a);
std::optional<Action> parse_action(std::string_view s);
// parse_action or Error(bad_request, code "invalid_action") naming the valid ones.
Action action_from(std::string_view s);

// The schemes neurod knows: job storage image secret disk blob flow app project
// (resources, "scheme://cluster/project/…"), role, cluster, token.
std::span<const std::string_view> known_schemes();
std::span<const std::string_view> resource_schemes();  // the cluster/project-scoped ones

// Where relative URIs ("storage:data/x") resolve: scheme://{cluster}/{project}/data/x.
struct UriContext {
  std::string cluster;
  std::string project;
};

// A canonical resource URI: a known scheme and zero or more path segments. Segments
// are non-empty, not "." or "..", have no control characters, '?' or '#'; at most
// 255 bytes each and 2048 in all. Canonical text: "scheme://a/b" ("scheme://" for the
// root). Parsing throws Error(bad_request) with code "invalid_uri" saying what is wrong.
class Uri {
 public:
  Uri() = default;
  // Accepts "scheme://a/b", "scheme:/a/b", "scheme:" and "scheme://" (the root); a
  // trailing '/' is dropped. With ctx, "scheme:rel/path" (no leading slash) resolves
  // under ctx's cluster and project for resource schemes and under the root for others;
  // without ctx it is an error.
  static Uri parse(std::string_view text, const UriContext* ctx = nullptr);

  const std::string& scheme() const { return scheme_; }
  const std::vector<std::string>& segments() const { return segments_; }
  bool is_root() const { return segments_.empty(); }
  std::string str() const;
  // Same scheme and this URI's segments are a prefix of other's (a URI covers itself).
  bool covers(const Uri& other) const;
  Uri parent() const;  // the root's parent is the root
  Uri child(std::string_view segment) const;
  friend bool operator==(const Uri&, const Uri&) = default;

 private:
  std::string scheme_;
  std::vector<std::string> segments_;
};

struct Grant {
  std::string uri;  // canonical
  Action action = Action::read;
  friend bool operator==(const Grant&, const Grant&) = default;
};

struct Permission {
  std::string uri;  // canonical
  Action action = Action::read;
  friend bool operator==(const Permission&, const Permission&) = default;
};

// One entry of a check: a single permission (all-of) or several alternatives (any-of).
using Requirement = std::vector<Permission>;

// The effective grants of one principal as a trie keyed by scheme then segments.
// Immutable once built; safe to share between threads.
class PermissionTree {
 public:
  PermissionTree();
  ~PermissionTree();
  PermissionTree(PermissionTree&&) noexcept;
  PermissionTree& operator=(PermissionTree&&) noexcept;
  // Several grants on one URI: deny wins, otherwise the highest action.
  explicit PermissionTree(std::span<const Grant> grants);

  // The effective action on a canonical URI (deny = nothing allowed), following the
  // rules at the top of this file. The hot path: no allocation for canonical input.
  Action effective(std::string_view canonical_uri) const;
  bool allows(std::string_view canonical_uri, Action a) const {
    auto e = effective(canonical_uri);
    return a != Action::deny && e != Action::deny && e >= a;
  }
  // The requirements that are not met (an any-of entry is missing when none of its
  // alternatives is allowed; it is returned whole). Empty = allowed.
  std::vector<Requirement> missing(std::span<const Requirement> required) const;

  // {"uri", "action", "children": {segment: {"action", "children"}}} for uri's subtree,
  // `depth` levels deep (-1: all). "action" is the effective action at each node
  // (implicit list included); nodes with no access are left out.
  nlohmann::json subtree(const Uri& uri, int depth = -1) const;

  std::size_t node_count() const;

 private:
  friend class GrantSet;  // its cache prefetches a tree's storage ahead of the first check
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every principal's own grants, immutable; a change makes a new GrantSet with with().
// Trees (own grants + held roles' grants) are built on first use and cached inside,
// so a GrantSet is cheap to copy-on-write and fast to query. Thread-safe.
class GrantSet {
 public:
  using Grants = std::vector<Grant>;
  using Map = std::unordered_map<std::string, std::shared_ptr<const Grants>>;

  GrantSet();
  explicit GrantSet(Map by_principal);
  ~GrantSet();

  // A new set where `principal`'s own grants are replaced (nullptr or empty: removed).
  std::shared_ptr<const GrantSet> with(const std::string& principal, std::shared_ptr<const Grants> grants) const;

  // The principal's own grants, or an empty list.
  const Grants& grants_of(std::string_view principal) const;
  // The roles it holds, directly and transitively, sorted, without itself.
  std::vector<std::string> roles_of(std::string_view principal) const;
  // The principal's effective tree; cached. Never null (an unknown principal gets an empty tree).
  std::shared_ptr<const PermissionTree> tree_of(std::string_view principal) const;
  // Every (principal, grant) whose URI lies in uri's subtree (uri itself included), in
  // principal then URI order; with `exclude`, that principal's own grants are left out.
  std::vector<std::pair<std::string, Grant>> grants_under(const Uri& uri, std::string_view exclude = {}) const;
  // Principals that hold grants.
  std::size_t principal_count() const;
  std::size_t grant_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace neurod::auth
