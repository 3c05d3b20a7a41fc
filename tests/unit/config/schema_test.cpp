#include "config/schema.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace config = neurod::config;
using config::Errors;
using config::Schema;
using config::Size;
using neurod::Duration;

namespace {

struct Inner {
  std::string name = "x";
  int count = 3;
  static void describe(Schema<Inner>& s) {
    s.field("name", &Inner::name, "A name.").non_empty();
    s.field("count", &Inner::count, "How many.").min(0);
  }
  friend bool operator==(const Inner&, const Inner&) = default;
};

struct All {
  bool flag = false;
  int small = 5;
  std::int64_t big = -7;
  std::uint64_t ubig = 42;
  double ratio = 0.5;
  std::string mode = "fast";
  std::string label = "hello world: $HOME ${X}";
  std::vector<std::string> tags{"a", "b"};
  Size limit{16 * 1024};
  Duration timeout{90000};
  std::string password;
  std::string even = "ab";
  Inner inner{"y", 9};  // the parent's default, not Inner{}, is what an absent section keeps
  static void describe(Schema<All>& s) {
    s.field("flag", &All::flag, "A switch.");
    s.field("small", &All::small, "Between one and ten.").min(1).max(10);
    s.field("big", &All::big, "Any 64-bit integer.");
    s.field("ubig", &All::ubig, "Unsigned.\nSecond line of help.");
    s.field("ratio", &All::ratio, "A fraction.").min(0).max(1);
    s.field("mode", &All::mode, "Speed.").one_of({"fast", "slow"});
    s.field("label", &All::label, "Free text.");
    s.field("tags", &All::tags, "Tags.").one_of({"a", "b", "c"}).non_empty();
    s.field("limit", &All::limit, "A size.").min(1024).max(1024.0 * 1024 * 1024);
    s.field("timeout", &All::timeout, "A duration.").min(1000);
    s.field("password", &All::password, "A secret.").secret();
    s.field("even", &All::even, "Even length.").check([](const std::string& v) -> std::optional<std::string> {
      if (v.size() % 2) return "length must be even";
      return std::nullopt;
    });
    s.field("inner", &All::inner, "Nested section.");
  }
  friend bool operator==(const All&, const All&) = default;
};

All parse_all(const std::string& yaml, Errors& errors) {
  errors.file = "t.yaml";
  return config::parse<All>(YAML::Load(yaml), "", errors);
}

std::vector<std::string> errors_of(const std::string& yaml) {
  Errors errors;
  parse_all(yaml, errors);
  return errors.lines();
}

std::string one_error(const std::string& yaml) {
  auto lines = errors_of(yaml);
  REQUIRE(lines.size() == 1);
  return lines[0];
}

}  // namespace

TEST_CASE("schema: a null node, an empty document and an empty map give the defaults") {
  Errors errors;
  CHECK(config::parse<All>(YAML::Node(), "", errors) == All{});
  CHECK(config::parse<All>(YAML::Load(""), "", errors) == All{});
  CHECK(config::parse<All>(YAML::Load("{}"), "", errors) == All{});
  CHECK(config::parse<All>(YAML::Load("small: ~\ninner:\n"), "", errors) == All{});
  CHECK(errors.empty());
}

TEST_CASE("schema: every value type parses") {
  Errors errors;
  All a = parse_all(R"(
flag: yes
small: 10
big: -9223372036854775808
ubig: 18446744073709551615
ratio: 0.25
mode: slow
label: "quoted: text"
tags: [c]
limit: 10MiB
timeout: 1h30m
password: hunter2
even: abcd
inner:
  name: z
)",
                    errors);
  REQUIRE(errors.empty());
  CHECK(a.flag);
  CHECK(a.small == 10);
  CHECK(a.big == std::numeric_limits<std::int64_t>::min());
  CHECK(a.ubig == std::numeric_limits<std::uint64_t>::max());
  CHECK(a.ratio == 0.25);
  CHECK(a.mode == "slow");
  CHECK(a.label == "quoted: text");
  CHECK(a.tags == std::vector<std::string>{"c"});
  CHECK(a.limit.bytes == 10u << 20);
  CHECK(a.timeout == Duration(5400000));
  CHECK(a.password == "hunter2");
  CHECK(a.even == "abcd");
  CHECK(a.inner.name == "z");
  CHECK(a.inner.count == 9);  // untouched keys of a nested section keep the parent's default

  for (const char* f : {"false", "no", "off", "False", "OFF"}) {
    CHECK_FALSE(parse_all(std::string("flag: true\n"), errors).flag == false);
    CHECK(parse_all(std::string("flag: ") + f, errors).flag == false);
  }
  CHECK(parse_all("flag: On", errors).flag);
  CHECK(parse_all("limit: 2048", errors).limit.bytes == 2048u);
  CHECK(parse_all("timeout: 5", errors).timeout == Duration(5000));
  CHECK(errors.empty());
}

TEST_CASE("schema: type errors") {
  CHECK(one_error("small: ten") == R"(t.yaml:1: small: expected integer between 1 and 10, got "ten")");
  CHECK(one_error("big: 1.5") == R"(t.yaml:1: big: expected integer, got "1.5")");
  CHECK(one_error("big: 99999999999999999999") ==
        "t.yaml:1: big: expected integer <= 9223372036854775807, got 99999999999999999999");
  CHECK(one_error("small: 99999999999") == "t.yaml:1: small: expected integer between 1 and 10, got 99999999999");
  CHECK(one_error("big: -99999999999999999999") ==
        "t.yaml:1: big: expected integer >= -9223372036854775808, got -99999999999999999999");
  CHECK(one_error("ubig: -1") == "t.yaml:1: ubig: expected integer >= 0, got -1");
  CHECK(one_error("flag: maybe") == R"(t.yaml:1: flag: expected true or false, got "maybe")");
  CHECK(one_error("ratio: half") == R"(t.yaml:1: ratio: expected number between 0 and 1, got "half")");
  CHECK(one_error("ratio: nan") == R"(t.yaml:1: ratio: expected number between 0 and 1, got "nan")");
  CHECK(one_error("limit: lots") == R"(t.yaml:1: limit: expected a size like 10GiB, got "lots")");
  CHECK(one_error("limit: -1KiB") == R"(t.yaml:1: limit: expected a size like 10GiB, got "-1KiB")");
  CHECK(one_error("timeout: soon") == R"(t.yaml:1: timeout: expected a duration like 90s, got "soon")");
  CHECK(one_error("mode: [fast]") == "t.yaml:1: mode: expected a string, got a list");
  CHECK(one_error("small: {a: 1}") == "t.yaml:1: small: expected integer between 1 and 10, got a map");
  CHECK(one_error("tags: a") == R"(t.yaml:1: tags: expected a list like [a, b], got "a")");
  CHECK(one_error("inner: 5") == R"(t.yaml:1: inner: expected a map of settings, got "5")");
  CHECK(one_error("inner: [1]") == "t.yaml:1: inner: expected a map of settings, got a list");
}

TEST_CASE("schema: min and max") {
  CHECK(one_error("small: 0") == "t.yaml:1: small: expected integer between 1 and 10, got 0");
  CHECK(one_error("small: 11") == "t.yaml:1: small: expected integer between 1 and 10, got 11");
  CHECK(one_error("ratio: 1.5") == "t.yaml:1: ratio: expected number between 0 and 1, got 1.5");
  CHECK(one_error("limit: 1000B") == "t.yaml:1: limit: expected a size between 1KiB and 1GiB, got 1000B");
  CHECK(one_error("limit: 2GiB") == "t.yaml:1: limit: expected a size between 1KiB and 1GiB, got 2GiB");
  CHECK(one_error("timeout: 500ms") == "t.yaml:1: timeout: expected a duration >= 1s, got 500ms");
  CHECK(one_error("inner: {count: -1}") == "t.yaml:1: inner.count: expected integer >= 0, got -1");
  Errors errors;
  CHECK(parse_all("small: 1\nlimit: 1KiB\ntimeout: 1s\nratio: 1", errors).small == 1);
  CHECK(errors.empty());
}

TEST_CASE("schema: one_of, non_empty and check") {
  CHECK(one_error("mode: medium") == R"(t.yaml:1: mode: expected one of [fast, slow], got "medium")");
  CHECK(one_error("tags:\n  - a\n  - d") == R"(t.yaml:3: tags: expected one of [a, b, c], got "d")");
  CHECK(one_error("tags: []") == "t.yaml:1: tags: must not be empty");
  CHECK(one_error("inner:\n  name: ''") == "t.yaml:2: inner.name: must not be empty");
  CHECK(one_error("even: abc") == "t.yaml:1: even: length must be even");
}

TEST_CASE("schema: unknown keys with did-you-mean, full dotted paths") {
  CHECK(one_error("smal: 3") == "t.yaml:1: smal: unknown key 'smal'; did you mean 'small'?");
  CHECK(one_error("zzzzzz: 3") == "t.yaml:1: zzzzzz: unknown key 'zzzzzz'");
  CHECK(one_error("inner:\n  nmae: q") == "t.yaml:2: inner.nmae: unknown key 'nmae'; did you mean 'name'?");
  CHECK(one_error("flag: true\nflag: false") == "t.yaml:2: flag: duplicate key");

  Errors errors;
  errors.file = "n.yaml";
  config::parse<Inner>(YAML::Load("cont: 1"), "modules.system", errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors.lines()[0] == "n.yaml:1: modules.system.cont: unknown key 'cont'; did you mean 'count'?");
}

TEST_CASE("schema: every error of a document is reported at once, with its line") {
  const std::string yaml = R"(flag: true
small: ten
mode: medium
colour: red
inner:
  name: ok
  count: many
  extra: 1
limit: 5XB
timeout: 10ms
tags: [a, x, y]
)";
  CHECK(errors_of(yaml) == std::vector<std::string>{
                               R"(t.yaml:2: small: expected integer between 1 and 10, got "ten")",
                               R"(t.yaml:3: mode: expected one of [fast, slow], got "medium")",
                               "t.yaml:4: colour: unknown key 'colour'",
                               R"(t.yaml:7: inner.count: expected integer >= 0, got "many")",
                               "t.yaml:8: inner.extra: unknown key 'extra'",
                               R"(t.yaml:9: limit: expected a size like 10GiB, got "5XB")",
                               "t.yaml:10: timeout: expected a duration >= 1s, got 10ms",
                               R"(t.yaml:11: tags: expected one of [a, b, c], got "x")",
                               R"(t.yaml:11: tags: expected one of [a, b, c], got "y")",
                           });
  // Rejected values keep their defaults; good ones are still taken.
  Errors errors;
  All a = parse_all(yaml, errors);
  CHECK(a.flag);
  CHECK(a.small == 5);
  CHECK(a.inner == Inner{"y", 9});
}

TEST_CASE("schema: Errors formatting") {
  Errors errors;
  errors.file = "f.yaml";
  errors.add(3, "a.b", "bad");
  errors.add(0, "c", "worse");
  errors.add(1, "", "no key");
  errors.add(YAML::Node(), "d", "synthetic node");
  CHECK(errors.size() == 4);
  CHECK(errors.lines() == std::vector<std::string>{"f.yaml:3: a.b: bad", "f.yaml: c: worse", "f.yaml:1: no key",
                                                   "f.yaml: d: synthetic node"});
  config::ConfigError e(errors.lines());
  CHECK(std::string(e.what()) == "f.yaml:3: a.b: bad\nf.yaml: c: worse\nf.yaml:1: no key\nf.yaml: d: synthetic node");
  CHECK(e.errors.size() == 4);
}

TEST_CASE("schema: environment substitution") {
  setenv("NEUROD_T_SMALL", "7", 1);
  setenv("NEUROD_T_EMPTY", "", 1);
  unsetenv("NEUROD_T_UNSET");
  Errors errors;
  All a = parse_all(R"(
small: ${NEUROD_T_SMALL}
label: "a-${NEUROD_T_SMALL}-${NEUROD_T_UNSET:-dflt}-${NEUROD_T_EMPTY:-e}-[${NEUROD_T_EMPTY}]-$$-$HOME-$"
tags: ["${NEUROD_T_UNSET:-c}"]
inner:
  name: ${NEUROD_T_UNSET:-}x
)",
                    errors);
  REQUIRE(errors.lines() == std::vector<std::string>{});
  CHECK(a.small == 7);
  CHECK(a.label == "a-7-dflt-e-[]-$-$HOME-$");
  CHECK(a.tags == std::vector<std::string>{"c"});
  CHECK(a.inner.name == "x");

  CHECK(errors_of("flag: true\nsmall: ${NEUROD_T_UNSET}\nmode: ${NEUROD_T_UNSET:-slow}\nlabel: ${1BAD}\nbig: ${OPEN") ==
        std::vector<std::string>{"t.yaml:2: small: environment variable NEUROD_T_UNSET is not set",
                                 R"(t.yaml:4: label: invalid environment variable reference "${1BAD}")",
                                 R"(t.yaml:5: big: unterminated ${ in "${OPEN")"});
  // Substitution happens before validation.
  setenv("NEUROD_T_MODE", "medium", 1);
  CHECK(one_error("mode: ${NEUROD_T_MODE}") == R"(t.yaml:1: mode: expected one of [fast, slow], got "medium")");

  std::string error;
  CHECK(config::expand_env("no refs", error) == "no refs");
  CHECK(config::expand_env("$$${NEUROD_T_SMALL}$$", error) == "$7$");
  CHECK_FALSE(config::expand_env("${}", error).has_value());
}

TEST_CASE("schema: file: secrets") {
  neurod::test::TempDir dir;
  auto path = dir.write("pw", "s3cret\n\n");
  setenv("NEUROD_T_DIR", dir.path().c_str(), 1);
  Errors errors;
  CHECK(parse_all("password: file:" + path.string(), errors).password == "s3cret");
  CHECK(parse_all("password: file:${NEUROD_T_DIR}/pw", errors).password == "s3cret");
  CHECK(parse_all("label: file:" + path.string(), errors).label == "file:" + path.string());  // only for secrets
  CHECK(errors.empty());
  const std::string missing = (dir / "nope").string();
  CHECK(one_error("password: file:" + missing) ==
        "t.yaml:1: password: cannot read secret file " + missing + ": No such file or directory");
}

TEST_CASE("schema: reference prints every key with its default and parses back to the defaults") {
  const std::string ref = config::reference<All>(0);
  CHECK(ref.find("# A switch. (default: false)\nflag: false\n") != std::string::npos);
  CHECK(ref.find("# Between one and ten. (default: 5; 1 to 10)\nsmall: 5\n") != std::string::npos);
  CHECK(ref.find("# Unsigned.\n# Second line of help. (default: 42)\nubig: 42\n") != std::string::npos);
  CHECK(ref.find("# Speed. (default: fast; one of: fast, slow)\nmode: fast\n") != std::string::npos);
  CHECK(ref.find("label: \"hello world: $$HOME $${X}\"\n") != std::string::npos);
  CHECK(ref.find("tags: [a, b]\n") != std::string::npos);
  CHECK(ref.find("# A size. (default: 16KiB; 1KiB to 1GiB)\nlimit: 16KiB\n") != std::string::npos);
  CHECK(ref.find("timeout: 1m30s\n") != std::string::npos);
  CHECK(ref.find("password: \"\"\n") != std::string::npos);
  CHECK(ref.find("# Nested section.\ninner:\n  # A name. (default: y)\n  name: y\n") != std::string::npos);
  Errors errors;
  CHECK(config::parse<All>(YAML::Load(ref), "", errors) == All{});
  CHECK(errors.lines() == std::vector<std::string>{});

  // Indented under a parent key, as modules are.
  const std::string nested = "section:\n" + config::reference<All>(4);
  CHECK(config::parse<All>(YAML::Load(nested)["section"], "section", errors) == All{});
  CHECK(errors.empty());
}

namespace {
struct Odd {
  std::string secret = "topsecret";
  std::string colon = "sqlite::memory:";
  std::string empty;
  std::string quote = "a \"b\" \\ c\td";
  std::string hash = "#nope";
  std::vector<std::string> list{"x:y", "", "a,b", "[z]"};
  std::vector<std::string> none;
  double d = 1e-3;
  static void describe(Schema<Odd>& s) {
    s.field("secret", &Odd::secret, "").secret();
    s.field("colon", &Odd::colon, "");
    s.field("empty", &Odd::empty, "");
    s.field("quote", &Odd::quote, "");
    s.field("hash", &Odd::hash, "");
    s.field("list", &Odd::list, "");
    s.field("none", &Odd::none, "");
    s.field("d", &Odd::d, "");
  }
};
}  // namespace

TEST_CASE("schema: reference quotes awkward strings and hides secrets") {
  const std::string ref = config::reference<Odd>(2);
  CHECK(ref.find("topsecret") == std::string::npos);
  CHECK(ref.find("  # (default: <secret>; secret, file:/path reads it from a file)\n  # secret: <secret>\n") !=
        std::string::npos);
  Errors errors;
  Odd o = config::parse<Odd>(YAML::Load(ref), "", errors);
  CHECK(errors.empty());
  CHECK(o.secret == "topsecret");
  CHECK(o.colon == "sqlite::memory:");
  CHECK(o.empty.empty());
  CHECK(o.quote == "a \"b\" \\ c\td");
  CHECK(o.hash == "#nope");
  CHECK(o.list == Odd{}.list);
  CHECK(o.none.empty());
  CHECK(o.d == 1e-3);
}

namespace {
struct Misuse {
  std::string s;
  int i = 0;
  static void describe(Schema<Misuse>&) {}
};
}  // namespace

TEST_CASE("schema: builder misuse is a programming error") {
  Schema<Misuse> s;
  CHECK_THROWS_AS(s.field("s", &Misuse::s, "").min(1), std::logic_error);
  CHECK_THROWS_AS(s.field("i", &Misuse::i, "").one_of({"a"}), std::logic_error);
  CHECK_THROWS_AS(s.field("i", &Misuse::i, ""), std::logic_error);  // declared twice
  Schema<Misuse> t;
  CHECK_THROWS_AS(t.field("i", &Misuse::i, "").secret(), std::logic_error);
  CHECK_THROWS_AS(t.field("s", &Misuse::s, "").check([](const int&) -> std::optional<std::string> { return {}; }),
                  std::logic_error);
}

TEST_CASE("schema: did_you_mean") {
  const std::vector<std::string> keys{"listen", "io_threads", "max_body_size", "log"};
  CHECK(config::did_you_mean("listn", keys) == "listen");
  CHECK(config::did_you_mean("lisetn", keys) == "listen");
  CHECK(config::did_you_mean("io_thread", keys) == "io_threads");
  CHECK(config::did_you_mean("max_bodysize", keys) == "max_body_size");
  CHECK(config::did_you_mean("lg", keys) == "log");
  CHECK(config::did_you_mean("banana", keys) == "");
  CHECK(config::did_you_mean("x", {}) == "");
}
