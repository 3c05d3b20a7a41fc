// Declarative config schemas (DESIGN §5). A config struct lists its keys once, in
//
//   static void describe(config::Schema<Config>& s) {
//     s.field("listen", &Config::listen, "Address and port to listen on.").non_empty();
//     s.field("io_threads", &Config::io_threads, "I/O threads.").min(1).max(64);
//   }
//
// and that one list drives parsing (with every error collected, each with file, line and
// dotted key), unknown-key detection with did-you-mean hints, and the commented reference
// YAML (`neurod config reference`). The struct's member initialisers are the defaults.
//
// A field may also be a list of sections, std::vector<S> where S has its own describe(),
// written as a YAML list of maps. Each entry starts from S{} and is checked like a nested
// section; errors name it as "presets[1].cpu".
//
//   s.field("presets", &Config::presets, "Resource presets users pick for jobs.").non_empty();
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "core/units.hpp"

namespace neurod::config {

// A byte count written as "10GiB", "512k" or "1048576" (see core/units.hpp).
struct Size {
  std::uint64_t bytes = 0;
  friend bool operator==(const Size&, const Size&) = default;
};

// Every problem found in one config document. Parsing never stops at the first error so
// that an operator fixes the whole file in one round.
class Errors {
 public:
  std::string file;  // the file name used in messages

  // line is 1-based; 0 means unknown. key is the full dotted path; may be empty.
  void add(int line, std::string key, std::string message);
  // Takes the line from the node's position in the document (unknown for synthetic nodes).
  void add(const YAML::Node& node, std::string key, std::string message);
  bool empty() const { return lines_.empty(); }
  std::size_t size() const { return lines_.size(); }
  // Each "file:line: key: message", or "file: key: message" when the line is unknown.
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

// Thrown by the loader with every error of a document; what() is all of them, one a line.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> lines);
  std::vector<std::string> errors;
};

// The candidate closest to key by edit distance, or "" when none is within
// max(2, key.size() / 3) edits.
std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates);

// ${VAR}, ${VAR:-default} (used when VAR is unset or empty) and "$$" (a literal "$"). A "$"
// followed by anything else stays as it is. nullopt with `error` set on an unset variable
// without default or a malformed reference.
std::optional<std::string> expand_env(std::string_view text, std::string& error);

template <class T>
class Schema;

namespace detail {

// The 1-based line of a node, 0 when it has none.
int line_of(const YAML::Node& node);

// What FieldBuilder records; the value parsers below read it.
struct Constraints {
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> one_of;
  bool non_empty = false;
  bool secret = false;
};

// One parser and one formatter per supported value type. A parser reports its own errors
// and returns false (leaving `out` untouched) when the value is rejected. Every scalar goes
// through expand_env() first.
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, bool& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, int& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::int64_t& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::uint64_t& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, double& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, std::string& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e,
                 std::vector<std::string>& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, Size& out);
bool parse_value(const YAML::Node& n, const std::string& key, const Constraints& c, Errors& e, Duration& out);

// The YAML text of a value as it appears in the reference (re-parses to the same value).
std::string format_value(bool v);
std::string format_value(int v);
std::string format_value(std::int64_t v);
std::string format_value(std::uint64_t v);
std::string format_value(double v);
std::string format_value(const std::string& v);
std::string format_value(const std::vector<std::string>& v);
std::string format_value(Size v);
std::string format_value(Duration v);

// Whether min()/max() mean anything for this value type.
template <class M>
inline constexpr bool kRanged =
    std::is_same_v<M, int> || std::is_same_v<M, std::int64_t> || std::is_same_v<M, std::uint64_t> ||
    std::is_same_v<M, double> || std::is_same_v<M, Size> || std::is_same_v<M, Duration>;

template <class M>
inline constexpr bool kStringy = std::is_same_v<M, std::string> || std::is_same_v<M, std::vector<std::string>>;

template <class U>
concept Described = requires(Schema<U>& s) {
  U::describe(s);
};

// std::vector<S> of a described S: a YAML list of maps, each parsed as a section.
template <class M>
struct SectionList : std::false_type {};
template <class S>
struct SectionList<std::vector<S>> : std::bool_constant<Described<S>> {};
template <class M>
inline constexpr bool kSectionList = SectionList<M>::value;

// Shared text of the reference: "# description (default: x; min: 1)" lines, indented.
std::string comment_block(int indent, const std::string& description, const std::string& suffix);
std::string constraint_suffix(const Constraints& c, const std::string& default_text, bool is_size, bool is_duration);
// Returns false (and reports it) when a section's node is not a map.
bool check_map(const YAML::Node& node, const std::string& prefix, Errors& errors);
// Returns false (and reports it) when a list of sections' node is not a sequence.
bool check_list(const YAML::Node& node, const std::string& key, Errors& errors);
std::string join_key(const std::string& prefix, const std::string& name);
void report_unknown(const YAML::Node& key_node, const std::string& prefix, const std::string& name,
                    const std::vector<std::string>& known, Errors& errors);

// One line of a list of sections in the reference, documented by a trailing comment:
// text is the whole line up to the value (indentation, and "- " or "#" where they apply).
struct EntryLine {
  std::string text;
  std::string comment;
};
// A field's description and constraints on one line, for a trailing comment.
std::string one_line(const std::string& description, const std::string& suffix);
// Appends the lines of one list entry's keys (indented by indent + 2) with "- " at column
// `indent` before the first key that is not commented out, or a "- {}" line when none is.
void add_entry(std::vector<EntryLine> keys, int indent, std::vector<EntryLine>& out);
// Comments out lines[from..] at column `indent`, so that deleting the "#" restores them.
void comment_out(std::vector<EntryLine>& lines, std::size_t from, int indent);
// The lines, one a line, with their trailing comments aligned.
std::string render_lines(const std::vector<EntryLine>& lines);

// The argument type of a non-generic callable, so that check() can be typed by the field.
template <class F>
struct CallableArg : CallableArg<decltype(&F::operator())> {};
template <class C, class R, class A>
struct CallableArg<R (C::*)(A) const> {
  using type = std::remove_cvref_t<A>;
};
template <class C, class R, class A>
struct CallableArg<R (C::*)(A)> {
  using type = std::remove_cvref_t<A>;
};
template <class R, class A>
struct CallableArg<R (*)(A)> {
  using type = std::remove_cvref_t<A>;
};

template <class T>
class FieldBase {
 public:
  FieldBase(std::string name, std::string description) : name_(std::move(name)), description_(std::move(description)) {}
  virtual ~FieldBase() = default;
  FieldBase(const FieldBase&) = delete;
  FieldBase& operator=(const FieldBase&) = delete;

  const std::string& name() const { return name_; }
  Constraints& constraints() { return constraints_; }
  void add_check(std::function<std::optional<std::string>(const void*)> fn) { checks_.push_back(std::move(fn)); }

  virtual const std::type_info& type() const = 0;
  virtual bool ranged() const = 0;
  virtual bool stringy() const = 0;
  virtual bool sized() const = 0;  // whether non_empty() means anything
  virtual bool is_string() const = 0;
  virtual void parse(T& obj, const YAML::Node& node, const std::string& key, Errors& errors) const = 0;
  virtual std::string reference(const T& defaults, int indent) const = 0;
  // The field as a line (or, for a section, lines) of a list entry, at `indent`; documented
  // when `docs`, with defaults taken from `defaults`.
  virtual void entry_lines(const T& value, const T& defaults, int indent, bool docs,
                           std::vector<EntryLine>& out) const = 0;

 protected:
  std::string name_;
  std::string description_;
  Constraints constraints_;
  std::vector<std::function<std::optional<std::string>(const void*)>> checks_;
};

template <class U>
const Schema<U>& schema_of();
template <class U>
void parse_into(U& obj, const YAML::Node& node, const std::string& prefix, Errors& errors,
                const std::vector<std::string>& extra_keys = {});
template <class U>
std::string reference_of(const U& value, int indent);
template <class S>
void list_lines(const std::vector<S>& items, const std::string& name, const std::string& comment, int indent, bool docs,
                bool non_empty, std::vector<EntryLine>& out);

template <class T, class M>
class Field final : public FieldBase<T> {
 public:
  Field(std::string name, M T::*member, std::string description)
      : FieldBase<T>(std::move(name), std::move(description)), member_(member) {}

  const std::type_info& type() const override { return typeid(M); }
  bool ranged() const override { return kRanged<M>; }
  bool stringy() const override { return kStringy<M>; }
  bool sized() const override { return kStringy<M> || kSectionList<M>; }
  bool is_string() const override { return std::is_same_v<M, std::string>; }

  void parse(T& obj, const YAML::Node& node, const std::string& key, Errors& errors) const override {
    if (node.IsNull()) return;  // "key:" or "key: ~" keeps the default
    M& target = obj.*member_;
    if constexpr (Described<M>) {
      const std::size_t before = errors.size();
      M value = target;  // start from the parent's default, not M{}
      parse_into(value, node, key, errors);
      if (errors.size() != before) return;
      if (!run_checks(value, node, key, errors)) return;
      target = std::move(value);
    } else if constexpr (kSectionList<M>) {
      // A list in the file replaces the default one; each entry starts from S{}.
      using S = typename M::value_type;
      if (!check_list(node, key, errors)) return;
      const std::size_t before = errors.size();
      M values;
      std::size_t index = 0;
      for (const auto& item : node) {
        const std::string item_key = key + "[" + std::to_string(index++) + "]";
        if (!check_map(item, item_key, errors)) continue;
        S element{};
        parse_into(element, item, item_key, errors);
        values.push_back(std::move(element));
      }
      if (errors.size() != before) return;
      if (this->constraints_.non_empty && values.empty()) {
        errors.add(node, key, "must not be empty");
        return;
      }
      if (!run_checks(values, node, key, errors)) return;
      target = std::move(values);
    } else {
      M value{};
      if (!parse_value(node, key, this->constraints_, errors, value)) return;
      if (!run_checks(value, node, key, errors)) return;
      target = std::move(value);
    }
  }

  std::string reference(const T& defaults, int indent) const override {
    const M& value = defaults.*member_;
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    if constexpr (Described<M>) {
      std::string body = reference_of(value, indent + 2);
      std::string out = comment_block(indent, this->description_, "");
      if (body.empty()) return out + pad + this->name_ + ": {}\n";
      return out + pad + this->name_ + ":\n" + body;
    } else if constexpr (kSectionList<M>) {
      std::vector<EntryLine> lines;
      list_lines(value, this->name_, "", indent, true, this->constraints_.non_empty, lines);
      return comment_block(indent, this->description_, "") + render_lines(lines);
    } else {
      const bool hidden = this->constraints_.secret && is_non_empty(value);
      const std::string text = hidden ? std::string("<secret>") : format_value(value);
      std::string out = comment_block(
          indent, this->description_,
          constraint_suffix(this->constraints_, text, std::is_same_v<M, Size>, std::is_same_v<M, Duration>));
      // A set secret is printed commented out, so the reference still parses to the defaults.
      return out + pad + (hidden ? "# " : "") + this->name_ + ": " + text + "\n";
    }
  }

  void entry_lines(const T& value, const T& defaults, int indent, bool docs,
                   std::vector<EntryLine>& out) const override {
    const M& v = value.*member_;
    const M& d = defaults.*member_;
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    const std::string description = docs ? this->description_ : std::string();
    if constexpr (Described<M>) {
      out.push_back({pad + this->name_ + ":", description});
      const std::size_t header = out.size() - 1;
      for (const auto& f : schema_of<M>().fields()) f->entry_lines(v, d, indent + 2, docs, out);
      if (out.size() == header + 1) out[header].text += " {}";
    } else if constexpr (kSectionList<M>) {
      list_lines(v, this->name_, description, indent, docs, this->constraints_.non_empty, out);
    } else {
      const bool hidden = this->constraints_.secret && is_non_empty(v);
      const std::string text = hidden ? std::string("<secret>") : format_value(v);
      std::string comment;
      if (docs) {
        const bool secret_default = this->constraints_.secret && is_non_empty(d);
        const std::string default_text = secret_default ? std::string("<secret>") : format_value(d);
        comment = one_line(this->description_, constraint_suffix(this->constraints_, default_text,
                                                                 std::is_same_v<M, Size>, std::is_same_v<M, Duration>));
      }
      out.push_back({pad + (hidden ? "# " : "") + this->name_ + ": " + text, std::move(comment)});
    }
  }

 private:
  template <class V>
  static bool is_non_empty(const V& v) {
    if constexpr (std::is_same_v<V, std::string>)
      return !v.empty();
    else
      return false;
  }

  bool run_checks(const M& value, const YAML::Node& node, const std::string& key, Errors& errors) const {
    bool ok = true;
    for (const auto& check : this->checks_) {
      if (auto message = check(&value)) {
        errors.add(node, key, *message);
        ok = false;
      }
    }
    return ok;
  }

  M T::*member_;
};

}  // namespace detail

// Returned by Schema::field(); each call adds a constraint and returns the builder.
template <class T>
class FieldBuilder {
 public:
  explicit FieldBuilder(detail::FieldBase<T>& field) : field_(&field) {}

  // Numbers, sizes (in bytes) and durations (in milliseconds); inclusive.
  FieldBuilder& min(double v) {
    require(field_->ranged(), "min()");
    field_->constraints().min = v;
    return *this;
  }
  FieldBuilder& max(double v) {
    require(field_->ranged(), "max()");
    field_->constraints().max = v;
    return *this;
  }
  // Strings, and each element of a string list.
  FieldBuilder& one_of(std::vector<std::string> values) {
    require(field_->stringy(), "one_of()");
    field_->constraints().one_of = std::move(values);
    return *this;
  }
  // Strings, string lists and lists of sections: a value written in the file must not be
  // empty.
  FieldBuilder& non_empty() {
    require(field_->sized(), "non_empty()");
    field_->constraints().non_empty = true;
    return *this;
  }
  // Strings: "file:/path" is replaced by the file's content (trailing newlines dropped), and
  // the reference never prints a non-empty default.
  FieldBuilder& secret() {
    require(field_->is_string(), "secret()");
    field_->constraints().secret = true;
    return *this;
  }
  // fn(const M&) -> std::optional<std::string>: an error message, or nullopt when fine.
  // Runs after the built-in constraints passed, only on values written in the file; on a
  // list of sections, on the whole list once every entry parsed (e.g. unique names).
  template <class F>
  FieldBuilder& check(F fn) {
    using Arg = typename detail::CallableArg<std::decay_t<F>>::type;
    if (field_->type() != typeid(Arg)) {
      throw std::logic_error("config: check() on '" + field_->name() + "' takes the wrong value type");
    }
    field_->add_check(
        [fn = std::move(fn)](const void* v) -> std::optional<std::string> { return fn(*static_cast<const Arg*>(v)); });
    return *this;
  }

 private:
  void require(bool ok, const char* what) const {
    if (!ok) throw std::logic_error(std::string("config: ") + what + " does not apply to '" + field_->name() + "'");
  }
  detail::FieldBase<T>* field_;
};

template <class T>
class Schema {
 public:
  template <class M>
  FieldBuilder<T>& field(std::string name, M T::*member, std::string description) {
    static_assert(detail::Described<M> || detail::kSectionList<M> || detail::kRanged<M> || detail::kStringy<M> ||
                      std::is_same_v<M, bool>,
                  "config fields are bool, int, int64, uint64, double, string, string list, Size, Duration, "
                  "a struct with describe() or a std::vector of such structs");
    for (const auto& f : fields_) {
      if (f->name() == name) throw std::logic_error("config: field '" + name + "' declared twice");
    }
    fields_.push_back(std::make_unique<detail::Field<T, M>>(std::move(name), member, std::move(description)));
    return builders_.emplace_back(*fields_.back());
  }

  const std::vector<std::unique_ptr<detail::FieldBase<T>>>& fields() const { return fields_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& f : fields_) out.push_back(f->name());
    return out;
  }

 private:
  std::vector<std::unique_ptr<detail::FieldBase<T>>> fields_;
  std::deque<FieldBuilder<T>> builders_;  // a deque keeps the returned references valid
};

namespace detail {

// Built once per type: describe() is pure.
template <class U>
const Schema<U>& schema_of() {
  static const Schema<U> schema = [] {
    Schema<U> s;
    U::describe(s);
    return s;
  }();
  return schema;
}

template <class U>
void parse_into(U& obj, const YAML::Node& node, const std::string& prefix, Errors& errors,
                const std::vector<std::string>& extra_keys) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!check_map(node, prefix, errors)) return;
  const Schema<U>& schema = schema_of<U>();
  std::vector<std::string> seen;
  // Document order, so that errors come out sorted by line.
  for (const auto& kv : node) {  // by value from the iterator: it->first would dangle
    const YAML::Node key_node = kv.first;
    if (!key_node.IsScalar()) {
      errors.add(key_node, prefix, "keys must be plain names");
      continue;
    }
    const std::string& name = key_node.Scalar();
    const std::string key = join_key(prefix, name);
    bool duplicate = false;
    for (const auto& s : seen) duplicate = duplicate || s == name;
    if (duplicate) {
      errors.add(key_node, key, "duplicate key");
      continue;
    }
    seen.push_back(name);
    bool is_extra = false;
    for (const auto& k : extra_keys) is_extra = is_extra || k == name;
    if (is_extra) continue;
    const FieldBase<U>* field = nullptr;
    for (const auto& f : schema.fields()) {
      if (f->name() == name) field = f.get();
    }
    if (!field) {
      std::vector<std::string> known = schema.names();
      known.insert(known.end(), extra_keys.begin(), extra_keys.end());
      report_unknown(key_node, prefix, name, known, errors);
      continue;
    }
    field->parse(obj, kv.second, key, errors);
  }
}

template <class U>
std::string reference_of(const U& value, int indent) {
  std::string out;
  bool first = true;
  for (const auto& f : schema_of<U>().fields()) {
    if (!first) out += "\n";
    first = false;
    out += f->reference(value, indent);
  }
  return out;
}

// One entry of a list of sections: its keys at indent + 2, "- " at indent.
template <class S>
void entry_of(const S& item, const S& defaults, int indent, bool docs, std::vector<EntryLine>& out) {
  std::vector<EntryLine> keys;
  for (const auto& f : schema_of<S>().fields()) f->entry_lines(item, defaults, indent + 2, docs, keys);
  add_entry(std::move(keys), indent, out);
}

// "name:" and the entries, the first one documented; an empty list is "name: []" followed,
// when documented, by a commented-out example entry of S{} showing every key. A non_empty()
// list that is empty by default is a bare "name:" (null: the default), as "[]" is rejected.
template <class S>
void list_lines(const std::vector<S>& items, const std::string& name, const std::string& comment, int indent, bool docs,
                bool non_empty, std::vector<EntryLine>& out) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  const S blank{};
  if (items.empty()) {
    out.push_back({pad + name + (non_empty ? ":" : ": []"), comment});
    if (!docs) return;
    const std::size_t from = out.size();
    entry_of(blank, blank, indent + 2, true, out);
    comment_out(out, from, indent);
    return;
  }
  out.push_back({pad + name + ":", comment});
  for (std::size_t i = 0; i < items.size(); ++i) entry_of(items[i], blank, indent + 2, docs && i == 0, out);
}

}  // namespace detail

// Parses a section into T, starting from T{}'s defaults. A null or missing node gives the
// defaults; keys are reported as prefix + "." + name. Never throws on bad input: every
// problem goes to `errors` and the affected keys keep their defaults. extra_keys are
// accepted (and skipped) in addition to T's own, e.g. "modules" at the top level.
template <class T>
T parse(const YAML::Node& node, const std::string& key_prefix, Errors& errors,
        const std::vector<std::string>& extra_keys = {}) {
  T value{};
  detail::parse_into(value, node, key_prefix, errors, extra_keys);
  return value;
}

// Commented YAML of every key of T with its default and description, indented by `indent`
// spaces; parses back to T{}.
template <class T>
std::string reference(int indent) {
  const T defaults{};
  return detail::reference_of(defaults, indent);
}

}  // namespace neurod::config
