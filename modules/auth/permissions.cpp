#include "modules/auth/permissions.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

namespace neurod::auth {

namespace {

constexpr std::size_t kMaxSegment = 255;
constexpr std::size_t kMaxUri = 2048;

constexpr std::array<std::string_view, 12> kKnownSchemes{"job",  "storage", "image",   "secret", "disk",    "blob",
                                                         "flow", "app",     "project", "role",   "cluster", "token"};
// The first nine of kKnownSchemes.
constexpr std::size_t kResourceSchemeCount = 9;

constexpr std::array<std::string_view, 5> kActionNames{"deny", "list", "read", "write", "manage"};

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Error messages quote what the client sent; control characters and megabyte-long
// inputs must not end up verbatim in a response or a log line.
std::string quote(std::string_view s) {
  constexpr std::size_t kShown = 100;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kShown) out += "...";
  out += "'";
  return out;
}

[[noreturn]] void bad_uri(std::string_view text, const std::string& what) {
  throw Error(errc::bad_request, "invalid URI " + quote(text) + ": " + what).with_code("invalid_uri");
}

bool is_known_scheme(std::string_view s) {
  return std::find(kKnownSchemes.begin(), kKnownSchemes.end(), s) != kKnownSchemes.end();
}

bool is_resource_scheme(std::string_view s) {
  auto end = kKnownSchemes.begin() + kResourceSchemeCount;
  return std::find(kKnownSchemes.begin(), end, s) != end;
}

// Why `seg` is not a valid segment, or nullptr. Shared by the parser (which reports it)
// and the hot path (which just refuses), so both accept exactly the same segments.
const char* segment_problem(std::string_view seg) {
  if (seg.empty()) return "empty segment (a '//' inside the path)";
  if (seg.size() > kMaxSegment) return "segment longer than 255 bytes";
  if (seg == "." || seg == "..") return "'.' and '..' are not allowed as segments";
  for (char ch : seg) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "control character in a segment";
    if (c == '?' || c == '#' || c == '/') return "'?', '#' and '/' are not allowed in a segment";
  }
  return nullptr;
}

void split_into(std::string_view text, std::string_view path, std::vector<std::string>& out) {
  std::size_t index = out.size();
  while (true) {
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    ++index;
    if (auto why = segment_problem(seg)) {
      bad_uri(text, std::string(why) + " at segment " + std::to_string(index) +
                        "; expected 'scheme://segment/segment/...' with non-empty segments");
    }
    out.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

std::size_t canonical_size(std::string_view scheme, const std::vector<std::string>& segments) {
  std::size_t n = scheme.size() + 3;
  for (const auto& s : segments) n += s.size() + 1;
  return segments.empty() ? n : n - 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Actions and schemes

std::string_view to_string(Action a) {
  auto i = static_cast<std::size_t>(a);
  return i < kActionNames.size() ? kActionNames[i] : std::string_view("deny");
}

std::optional<Action> parse_action(std::string_view s) {
  for (std::size_t i = 0; i < kActionNames.size(); ++i) {
    if (kActionNames[i] == s) return static_cast<Action>(i);
  }
  return std::nullopt;
}

Action action_from(std::string_view s) {
  if (auto a = parse_action(s)) return *a;
  throw Error(errc::bad_request, "invalid action " + quote(s) + ": expected one of " + join(kActionNames))
      .with_code("invalid_action");
}

std::span<const std::string_view> known_schemes() { return kKnownSchemes; }

std::span<const std::string_view> resource_schemes() {
  return std::span<const std::string_view>(kKnownSchemes).first(kResourceSchemeCount);
}

// ---------------------------------------------------------------------------------------
// Uri

Uri Uri::parse(std::string_view text, const UriContext* ctx) {
  // Cheap guard before any work: even a relative URI cannot grow past the limit by
  // more than its context, so anything this long is refused unread.
  if (text.size() > 2 * kMaxUri) {
    bad_uri(text, std::to_string(text.size()) + " bytes long; at most " + std::to_string(kMaxUri) + " are allowed");
  }
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    bad_uri(text, "missing scheme; expected 'scheme://path' with a scheme among " + join(kKnownSchemes));
  }
  auto scheme = text.substr(0, colon);
  if (!is_known_scheme(scheme)) {
    std::string lower(scheme);
    for (auto& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (is_known_scheme(lower)) {
      bad_uri(text, "scheme " + quote(scheme) + " must be lower case (" + lower + ")");
    }
    bad_uri(text, "unknown scheme " + quote(scheme) + "; known schemes are " + join(kKnownSchemes));
  }

  Uri uri;
  uri.scheme_ = std::string(scheme);
  auto rest = text.substr(colon + 1);
  bool relative = false;
  if (rest.starts_with("//")) {
    rest.remove_prefix(2);
  } else if (rest.starts_with("/")) {
    rest.remove_prefix(1);
  } else if (!rest.empty()) {
    relative = true;
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);

  if (relative) {
    if (ctx == nullptr) {
      bad_uri(text, "relative path without a context to resolve it; expected '" + uri.scheme_ + "://path'");
    }
    if (is_resource_scheme(scheme)) {
      if (ctx->cluster.empty() || ctx->project.empty() || segment_problem(ctx->cluster) ||
          segment_problem(ctx->project)) {
        bad_uri(text, "a relative resource URI needs a current cluster and project to resolve against (have " +
                          quote(ctx->cluster) + " and " + quote(ctx->project) + ")");
      }
      uri.segments_.push_back(ctx->cluster);
      uri.segments_.push_back(ctx->project);
    }
  }
  if (!rest.empty()) split_into(text, rest, uri.segments_);

  if (auto n = canonical_size(uri.scheme_, uri.segments_); n > kMaxUri) {
    bad_uri(text, std::to_string(n) + " bytes long; at most " + std::to_string(kMaxUri) + " are allowed");
  }
  return uri;
}

std::string Uri::str() const {
  std::string out;
  out.reserve(canonical_size(scheme_, segments_));
  out += scheme_;
  out += "://";
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (i > 0) out += '/';
    out += segments_[i];
  }
  return out;
}

bool Uri::covers(const Uri& other) const {
  return scheme_ == other.scheme_ && segments_.size() <= other.segments_.size() &&
         std::equal(segments_.begin(), segments_.end(), other.segments_.begin());
}

Uri Uri::parent() const {
  Uri p = *this;
  if (!p.segments_.empty()) p.segments_.pop_back();
  return p;
}

Uri Uri::child(std::string_view segment) const {
  Uri c = *this;
  if (auto why = segment_problem(segment)) {
    throw Error(errc::bad_request, "invalid URI segment " + quote(segment) + " under " + quote(str()) + ": " + why)
        .with_code("invalid_uri");
  }
  c.segments_.emplace_back(segment);
  if (auto n = canonical_size(c.scheme_, c.segments_); n > kMaxUri) {
    bad_uri(c.str(), std::to_string(n) + " bytes long; at most " + std::to_string(kMaxUri) + " are allowed");
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// PermissionTree
//
// A check on a tree that is not in cache is bound by cache misses, not instructions, so
// the layout is about touching few lines:
//  - one allocation: a 64-byte header (with each scheme's node, so the first level is
//    an array index), then the nodes, then the few keys too long to sit in a node;
//  - nodes in breadth-first order, so each node's children sit side by side and a
//    lookup is a binary search over a contiguous run, ordered by (length, bytes) so
//    that most probes end on a length compare;
//  - each node carries its answer precomputed: a check is one walk and nothing more.

namespace {

int scheme_index(std::string_view s) {
  for (std::size_t i = 0; i < kKnownSchemes.size(); ++i) {
    if (kKnownSchemes[i] == s) return static_cast<int>(i);
  }
  return -1;
}

// Bytes that make a segment invalid (besides '/', which ends it).
constexpr std::array<bool, 256> kBadByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t[0x7f] = t['?'] = t['#'] = true;
  return t;
}();

}  // namespace

struct PermissionTree::Impl {
  static constexpr std::size_t kInlineKey = 12;
  struct Node {
    char key[kInlineKey];  // the segment, or for a longer one its offset among the long keys
    std::uint16_t key_len;
    Action at;            // effective action on exactly this node
    Action beyond;        // effective action below it where the trie has no node
    std::uint32_t first;  // first child's index
    std::uint32_t count;  // number of children
  };
  static_assert(sizeof(Node) == 24);

  std::uint32_t size = 0;  // nodes, the virtual root (index 0, parent of the schemes) included
  std::uint32_t long_size = 0;
  std::uint32_t bytes = 0;                                        // the whole block
  std::array<std::uint32_t, kKnownSchemes.size()> scheme_node{};  // 0: no node

  static constexpr std::size_t kHeader = 64;
  static constexpr std::align_val_t kAlign{64};

  // The only way to make one: header, nodes and long keys in a single block.
  static Impl* create(const std::vector<Node>& nodes, std::string_view long_keys) {
    static_assert(sizeof(Impl) <= kHeader);
    auto bytes = kHeader + nodes.size() * sizeof(Node) + long_keys.size();
    void* mem = ::operator new(bytes, kAlign);
    auto* impl = new (mem) Impl;
    impl->bytes = static_cast<std::uint32_t>(std::min<std::size_t>(bytes, UINT32_MAX));  // only a prefetch hint
    impl->size = static_cast<std::uint32_t>(nodes.size());
    impl->long_size = static_cast<std::uint32_t>(long_keys.size());
    std::memcpy(static_cast<void*>(impl->nodes()), nodes.data(), nodes.size() * sizeof(Node));
    if (!long_keys.empty()) std::memcpy(impl->long_keys(), long_keys.data(), long_keys.size());
    for (std::uint32_t c = nodes[0].first; c < nodes[0].first + nodes[0].count; ++c) {
      auto i = scheme_index(impl->key(nodes[c]));
      if (i >= 0) impl->scheme_node[static_cast<std::size_t>(i)] = c;
    }
    return impl;
  }
  static void operator delete(void* p) { ::operator delete(p, kAlign); }

  Node* nodes() { return reinterpret_cast<Node*>(reinterpret_cast<char*>(this) + kHeader); }
  const Node* nodes() const { return reinterpret_cast<const Node*>(reinterpret_cast<const char*>(this) + kHeader); }
  char* long_keys() { return reinterpret_cast<char*>(nodes() + size); }
  const char* long_keys() const { return reinterpret_cast<const char*>(nodes() + size); }

  const char* key_data(const Node& n) const {
    if (n.key_len <= kInlineKey) return n.key;
    std::uint32_t off;
    std::memcpy(&off, n.key, sizeof off);
    return long_keys() + off;
  }
  std::string_view key(const Node& n) const { return {key_data(n), n.key_len}; }

  // The child of `parent` named s[0, len), or 0 (the root is nobody's child). The
  // compare is written out: a libc memcmp call costs more than these short keys.
  std::uint32_t find(std::uint32_t parent, const char* s, std::size_t len) const {
    const Node* ns = nodes();
    std::uint32_t lo = ns[parent].first, hi = lo + ns[parent].count;
    while (lo < hi) {
      std::uint32_t mid = lo + (hi - lo) / 2;
      const Node& n = ns[mid];
      int cmp = 0;
      if (n.key_len != len) {
        cmp = n.key_len < len ? -1 : 1;
      } else {
        const char* k = key_data(n);
        for (std::size_t i = 0; i < len; ++i) {
          if (k[i] != s[i]) {
            cmp = static_cast<unsigned char>(k[i]) < static_cast<unsigned char>(s[i]) ? -1 : 1;
            break;
          }
        }
        if (cmp == 0) return mid;
      }
      if (cmp < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return 0;
  }
};

PermissionTree::PermissionTree() : impl_(Impl::create(std::vector<Impl::Node>(1, Impl::Node{}), {})) {}
PermissionTree::~PermissionTree() = default;
PermissionTree::PermissionTree(PermissionTree&&) noexcept = default;
PermissionTree& PermissionTree::operator=(PermissionTree&&) noexcept = default;

PermissionTree::PermissionTree(std::span<const Grant> grants) {
  // A pointer trie first (simple to insert into), flattened below.
  struct Build {
    std::map<std::string, std::unique_ptr<Build>, std::less<>> children;
    int grant = -1;
  };
  Build root;
  for (const auto& g : grants) {
    auto uri = Uri::parse(g.uri);
    Build* node = &root;
    auto descend = [&](const std::string& key) {
      auto it = node->children.find(key);
      if (it == node->children.end()) it = node->children.emplace(key, std::make_unique<Build>()).first;
      node = it->second.get();
    };
    descend(uri.scheme());
    for (const auto& s : uri.segments()) descend(s);
    auto a = static_cast<int>(g.action);
    if (node->grant < 0) {
      node->grant = a;
    } else if (node->grant == 0 || a == 0) {
      node->grant = 0;  // deny wins
    } else {
      node->grant = std::max(node->grant, a);
    }
  }

  using Node = Impl::Node;
  std::vector<Node> nodes(1, Node{});
  std::string long_keys;
  std::vector<int> grant{-1};
  std::vector<std::uint32_t> parent{0};
  std::vector<const Build*> order{&root};
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Build* b = order[i];
    std::vector<std::pair<std::string_view, const Build*>> kids;
    kids.reserve(b->children.size());
    for (const auto& [k, child] : b->children) kids.emplace_back(k, child.get());
    std::sort(kids.begin(), kids.end(), [](const auto& x, const auto& y) {
      return x.first.size() != y.first.size() ? x.first.size() < y.first.size() : x.first < y.first;
    });
    nodes[i].first = static_cast<std::uint32_t>(nodes.size());
    nodes[i].count = static_cast<std::uint32_t>(kids.size());
    for (const auto& [k, child] : kids) {
      Node n{};
      n.key_len = static_cast<std::uint16_t>(k.size());
      if (k.size() <= Impl::kInlineKey) {
        std::memcpy(n.key, k.data(), k.size());
      } else {
        auto off = static_cast<std::uint32_t>(long_keys.size());
        std::memcpy(n.key, &off, sizeof off);
        long_keys += k;
      }
      nodes.push_back(n);
      grant.push_back(child->grant);
      parent.push_back(static_cast<std::uint32_t>(i));
      order.push_back(child);
    }
  }

  // Top-down: whether the node is under a deny, and the best grant on its path (deny,
  // being 0, never raises the maximum).
  std::vector<char> denied(nodes.size(), 0);
  std::vector<Action> path_max(nodes.size(), Action::deny);
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    auto p = parent[i];
    denied[i] = denied[p] || grant[i] == 0;
    path_max[i] = std::max(path_max[p], grant[i] > 0 ? static_cast<Action>(grant[i]) : Action::deny);
  }
  // Bottom-up: whether some strict descendant holds a grant that counts (not deny, not
  // under a deny). Breadth-first order puts every child after its parent.
  std::vector<char> below(nodes.size(), 0);
  for (std::size_t i = nodes.size(); i-- > 1;) {
    if (below[i] || (grant[i] > 0 && !denied[i])) below[parent[i]] = 1;
  }
  for (std::size_t i = 1; i < nodes.size(); ++i) {
    nodes[i].at = nodes[i].beyond = Action::deny;
    if (denied[i]) continue;
    nodes[i].beyond = path_max[i];
    nodes[i].at = below[i] ? std::max(path_max[i], Action::list) : path_max[i];
  }
  impl_.reset(Impl::create(nodes, long_keys));
}

Action PermissionTree::effective(std::string_view uri) const {
  if (!impl_ || uri.size() > kMaxUri) return Action::deny;
  const char* p = uri.data();
  const char* end = p + uri.size();
  const auto* colon = static_cast<const char*>(std::memchr(p, ':', uri.size()));
  if (colon == nullptr) return Action::deny;
  int scheme = scheme_index({p, static_cast<std::size_t>(colon - p)});
  if (scheme < 0) return Action::deny;
  std::uint32_t node = impl_->scheme_node[static_cast<std::size_t>(scheme)];
  if (node == 0) return Action::deny;
  const Impl::Node* nodes = impl_->nodes();

  // Accept what Uri::parse accepts without a context, so that a sloppy spelling of a
  // URI gets the same answer as its canonical form, and refuse the rest: one pass that
  // splits, validates and walks. Segments past the trie's end are still checked, since
  // "x/../y" must not pass for something under x.
  p = colon + 1;
  if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
    p += 2;
  } else if (p != end && *p == '/') {
    ++p;
  } else if (p != end) {
    return Action::deny;  // relative: there is no context here
  }
  if (p != end && end[-1] == '/') --end;
  if (p == end) return nodes[node].at;

  bool inside = true;
  while (true) {
    const char* s = p;
    while (p != end && *p != '/') {
      if (kBadByte[static_cast<unsigned char>(*p)]) return Action::deny;
      ++p;
    }
    auto len = static_cast<std::size_t>(p - s);
    if (len == 0 || len > kMaxSegment || (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))) {
      return Action::deny;
    }
    if (inside) {
      auto child = impl_->find(node, s, len);
      if (child == 0) {
        inside = false;
      } else {
        node = child;
      }
    }
    if (p == end) break;
    ++p;
  }
  return inside ? nodes[node].at : nodes[node].beyond;
}

std::vector<Requirement> PermissionTree::missing(std::span<const Requirement> required) const {
  std::vector<Requirement> out;
  for (const auto& req : required) {
    // An entry with no alternatives cannot be met: refusing is the safe reading of a
    // caller's mistake.
    bool met = std::any_of(req.begin(), req.end(), [&](const Permission& p) { return allows(p.uri, p.action); });
    if (!met) out.push_back(req);
  }
  return out;
}

nlohmann::json PermissionTree::subtree(const Uri& uri, int depth) const {
  auto text = uri.str();
  nlohmann::json out{{"uri", text}, {"action", to_string(effective(text))}, {"children", nlohmann::json::object()}};
  if (!impl_) return out;
  auto scheme = scheme_index(uri.scheme());
  std::uint32_t node = scheme < 0 ? 0 : impl_->scheme_node[static_cast<std::size_t>(scheme)];
  for (std::size_t i = 0; node != 0 && i < uri.segments().size(); ++i) {
    node = impl_->find(node, uri.segments()[i].data(), uri.segments()[i].size());
  }
  if (node == 0) return out;

  const Impl::Node* nodes = impl_->nodes();
  std::function<void(std::uint32_t, int, nlohmann::json&)> fill = [&](std::uint32_t n, int left,
                                                                      nlohmann::json& children) {
    if (left == 0) return;
    for (std::uint32_t c = nodes[n].first; c < nodes[n].first + nodes[n].count; ++c) {
      if (nodes[c].at == Action::deny) continue;
      nlohmann::json entry{{"action", to_string(nodes[c].at)}, {"children", nlohmann::json::object()}};
      fill(c, left < 0 ? left : left - 1, entry["children"]);
      children[std::string(impl_->key(nodes[c]))] = std::move(entry);
    }
  };
  fill(node, depth < 0 ? -1 : depth, out["children"]);
  return out;
}

std::size_t PermissionTree::node_count() const { return impl_ ? impl_->size - 1 : 0; }

// ---------------------------------------------------------------------------------------
// GrantSet

namespace {

// The role a grant makes its holder a member of: read or more on exactly role://NAME.
std::optional<std::string> role_of_grant(const Grant& g) {
  if (g.action < Action::read || !g.uri.starts_with("role:")) return std::nullopt;
  try {
    auto uri = Uri::parse(g.uri);
    if (uri.scheme() != "role" || uri.is_root()) return std::nullopt;
    std::string name;
    for (const auto& s : uri.segments()) {
      if (!name.empty()) name += '/';
      name += s;
    }
    return name;
  } catch (const Error&) {
    return std::nullopt;
  }
}

const GrantSet::Grants kNoGrants;

}  // namespace

struct GrantSet::Impl {
  // The tree cache. The set of principals is fixed for a GrantSet's life, so the cache
  // is an open-addressing table over exactly those, built with the set. A slot's tree
  // is published once (under a writer mutex, with release) and readers never lock: one
  // acquire load, then a copy of the shared_ptr. A slot is one cache line and holds
  // short names inline, so a hit usually reads that line only.
  //
  // With thousands of principals the trees do not stay in cache, and a walk down a cold
  // tree is a chain of dependent misses. The slot therefore keeps where the tree's
  // storage is and prefetches it at once: the misses then overlap (with each other and
  // with the shared_ptr's reference count) instead of queueing.
  static constexpr std::size_t kInlineName = 20;
  static constexpr std::uint32_t kPrefetchMax = 2048;  // the top levels of a big tree
  struct alignas(64) Slot {
    std::atomic<const char*> block{nullptr};     // the tree's storage once published, else null
    std::shared_ptr<const PermissionTree> tree;  // written once, before `block`
    const Map::value_type* entry = nullptr;      // null: the slot is free
    std::uint32_t tag = 0;                       // the hash's high half
    std::uint32_t prefetch = 0;                  // bytes of `block` worth prefetching
    std::uint32_t len = 0;
    char name[kInlineName];  // the principal's first bytes
  };
  static_assert(sizeof(Slot) == 64);

  Map by_principal;
  std::size_t grants = 0;
  std::unique_ptr<Slot[]> slots;
  std::size_t mask = 0;
  std::array<std::mutex, 16> publish;

  static std::uint64_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }
  static std::uint32_t tag_of(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32); }

  explicit Impl(Map m) : by_principal(std::move(m)) {
    std::size_t n = 16;
    while (n < by_principal.size() + by_principal.size() / 2) n *= 2;
    slots = std::make_unique<Slot[]>(n);
    mask = n - 1;
    for (const auto& entry : by_principal) {
      grants += entry.second->size();
      auto h = hash_of(entry.first);
      std::size_t i = h & mask;
      while (slots[i].entry != nullptr) i = (i + 1) & mask;
      auto& slot = slots[i];
      slot.tag = tag_of(h);
      slot.entry = &entry;
      slot.len = static_cast<std::uint32_t>(entry.first.size());
      std::memcpy(slot.name, entry.first.data(), std::min(entry.first.size(), kInlineName));
    }
  }

  Slot* find(std::string_view principal) const {
    auto h = hash_of(principal);
    auto tag = tag_of(h);
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& s = slots[i];
      if (s.entry == nullptr) return nullptr;
      if (s.tag == tag && s.len == principal.size() &&
          std::memcmp(s.name, principal.data(), std::min(principal.size(), kInlineName)) == 0 &&
          (principal.size() <= kInlineName || s.entry->first == principal)) {
        return &s;
      }
    }
  }
};

GrantSet::GrantSet() : impl_(std::make_shared<Impl>(Map{})) {}

GrantSet::GrantSet(Map by_principal) {
  std::erase_if(by_principal, [](const auto& kv) { return !kv.second || kv.second->empty(); });
  impl_ = std::make_shared<Impl>(std::move(by_principal));
}

GrantSet::~GrantSet() = default;

std::shared_ptr<const GrantSet> GrantSet::with(const std::string& principal,
                                               std::shared_ptr<const Grants> grants) const {
  Map m = impl_->by_principal;
  if (!grants || grants->empty()) {
    m.erase(principal);
  } else {
    m[principal] = std::move(grants);
  }
  return std::make_shared<const GrantSet>(std::move(m));
}

const GrantSet::Grants& GrantSet::grants_of(std::string_view principal) const {
  auto* slot = impl_->find(principal);
  return slot == nullptr ? kNoGrants : *slot->entry->second;
}

std::vector<std::string> GrantSet::roles_of(std::string_view principal) const {
  std::set<std::string> seen;
  std::deque<std::string> queue{std::string(principal)};
  while (!queue.empty()) {
    auto current = std::move(queue.front());
    queue.pop_front();
    for (const auto& g : grants_of(current)) {
      auto role = role_of_grant(g);
      if (role && *role != principal && seen.insert(*role).second) queue.push_back(std::move(*role));
    }
  }
  return {seen.begin(), seen.end()};
}

std::shared_ptr<const PermissionTree> GrantSet::tree_of(std::string_view principal) const {
  static const auto kEmpty = std::make_shared<const PermissionTree>();
  auto* slot = impl_->find(principal);
  if (slot == nullptr) return kEmpty;  // no grants of its own, so no roles either
  if (const char* block = slot->block.load(std::memory_order_acquire)) {
    for (std::uint32_t off = 0; off < slot->prefetch; off += 64) __builtin_prefetch(block + off);
    return slot->tree;
  }

  Grants all = *slot->entry->second;
  for (const auto& role : roles_of(principal)) {
    const auto& g = grants_of(role);
    all.insert(all.end(), g.begin(), g.end());
  }
  // Built outside the lock: another thread may build the same tree meanwhile, and the
  // first one published wins; that costs a wasted build, never a wrong answer.
  std::shared_ptr<const PermissionTree> tree;
  try {
    tree = std::make_shared<const PermissionTree>(all);
  } catch (const Error& e) {
    // Stored grants are validated on the way in; one that is not valid is our fault,
    // not the caller's, and the principal gets nothing until it is fixed.
    throw Error(errc::internal, "the grants of principal " + quote(principal) + " (own or through a role) include " +
                                    "an invalid URI: " + e.what())
        .with_code("invalid_grant");
  }
  std::lock_guard lock(impl_->publish[static_cast<std::size_t>(slot - impl_->slots.get()) % impl_->publish.size()]);
  if (slot->block.load(std::memory_order_relaxed) == nullptr) {
    slot->tree = std::move(tree);
    const auto* impl = slot->tree->impl_.get();
    slot->prefetch = std::min(impl->bytes, Impl::kPrefetchMax);
    slot->block.store(reinterpret_cast<const char*>(impl), std::memory_order_release);
  }
  return slot->tree;
}

std::vector<std::pair<std::string, Grant>> GrantSet::grants_under(const Uri& uri, std::string_view exclude) const {
  auto prefix = uri.str();
  // Below the root every URI starts with "scheme://"; below anything else, with "uri/".
  auto under = [&](const std::string& u) {
    if (!u.starts_with(prefix)) return false;
    return uri.is_root() || u.size() == prefix.size() || u[prefix.size()] == '/';
  };
  std::vector<std::pair<std::string, Grant>> out;
  for (const auto& [principal, grants] : impl_->by_principal) {
    if (!exclude.empty() && principal == exclude) continue;
    for (const auto& g : *grants) {
      if (under(g.uri)) out.emplace_back(principal, g);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, a.second.uri, a.second.action) < std::tie(b.first, b.second.uri, b.second.action);
  });
  return out;
}

std::size_t GrantSet::principal_count() const { return impl_->by_principal.size(); }

std::size_t GrantSet::grant_count() const { return impl_->grants; }

}  // namespace neurod::auth
