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

namespace {
struct Mount {
  std::string path = "/data";
  bool read_only = true;
  static void describe(Schema<Mount>& s) {
    s.field("path", &Mount::path, "Where it is mounted.").non_empty();
    s.field("read_only", &Mount::read_only, "Mounted read-only.");
  }
  friend bool operator==(const Mount&, const Mount&) = default;
};

struct Preset {
  std::string name;
  double cpu = 1;
  std::string gpu = "none";
  Inner inner;  // a nested section inside an entry
  std::vector<Mount> mounts;
  static void describe(Schema<Preset>& s) {
    s.field("name", &Preset::name, "Preset name users pick.").non_empty();
    s.field("cpu", &Preset::cpu, "CPUs per job.").min(0.1);
    s.field("gpu", &Preset::gpu, "GPU model.").one_of({"none", "a100", "h100"});
    s.field("inner", &Preset::inner, "Nested.");
    s.field("mounts", &Preset::mounts, "Volumes.");
  }
  friend bool operator==(const Preset&, const Preset&) = default;
};

struct Farm {
  int size = 2;
  std::vector<Preset> presets;
  std::vector<Mount> builtin{{"/a", true}, {"/b c", false}};
  static void describe(Schema<Farm>& s) {
    s.field("size", &Farm::size, "How big.");
    s.field("presets", &Farm::presets, "Resource presets users pick for jobs.")
        .non_empty()
        .check([](const std::vector<Preset>& v) -> std::optional<std::string> {
          for (std::size_t i = 0; i < v.size(); ++i) {
            for (std::size_t j = 0; j < i; ++j) {
              if (v[i].name == v[j].name) return "duplicate preset name '" + v[i].name + "'";
            }
          }
          return std::nullopt;
        });
    s.field("builtin", &Farm::builtin, "Mounts every job gets.");
  }
  friend bool operator==(const Farm&, const Farm&) = default;
};

Farm parse_farm(const std::string& yaml, Errors& errors, const std::string& prefix = "") {
  errors.file = "f.yaml";
  return config::parse<Farm>(YAML::Load(yaml), prefix, errors);
}

std::string replace_all_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::vector<std::string> farm_errors(const std::string& yaml) {
  Errors errors;
  parse_farm(yaml, errors);
  return errors.lines();
}
}  // namespace

TEST_CASE("schema: a list of sections parses each entry from the entry's defaults") {
  Errors errors;
  Farm f = parse_farm(R"(
presets:
  - name: small
  - name: big
    cpu: 8
    gpu: h100
    inner:
      count: 0
    mounts:
      - path: /scratch
        read_only: false
      - {}
)",
                      errors);
  REQUIRE(errors.lines() == std::vector<std::string>{});
  REQUIRE(f.presets.size() == 2);
  CHECK(f.presets[0] == Preset{"small", 1, "none", Inner{}, {}});  // every omitted key is the entry's default
  CHECK(f.presets[1].name == "big");
  CHECK(f.presets[1].cpu == 8);
  CHECK(f.presets[1].gpu == "h100");
  CHECK(f.presets[1].inner == Inner{"x", 0});
  CHECK(f.presets[1].mounts == std::vector<Mount>{{"/scratch", false}, {"/data", true}});
  CHECK(f.builtin == Farm{}.builtin);  // absent: the default list

  // Flow style; a written list replaces the default one rather than merging into it.
  f = parse_farm("presets: [{name: a}, {name: b, cpu: 0.5}]\nbuiltin: [{path: /x}]", errors);
  CHECK(errors.empty());
  CHECK(f.presets == std::vector<Preset>{{"a", 1}, {"b", 0.5}});
  CHECK(f.builtin == std::vector<Mount>{{"/x", true}});

  // Null keeps the default; [] empties a list that allows it.
  CHECK(parse_farm("builtin:\npresets: ~", errors) == Farm{});
  CHECK(parse_farm("builtin: []", errors).builtin.empty());
  CHECK(errors.empty());

  // ${ENV} works inside entries.
  setenv("NEUROD_T_PRESET", "env-preset", 1);
  CHECK(parse_farm("presets:\n  - name: ${NEUROD_T_PRESET}", errors).presets.at(0).name == "env-preset");
  CHECK(errors.empty());
}

TEST_CASE("schema: errors inside a list of sections name the entry and its line") {
  const std::string yaml = R"(size: 3
presets:
  - name: a
    cpu: 2
  - name: b
    cpu: x
    inner:
      count: -1
    mounts:
      - path: ""
  - cpu: 0
    gpu: tpu
)";
  CHECK(farm_errors(yaml) == std::vector<std::string>{
                                 R"(f.yaml:6: presets[1].cpu: expected number >= 0.1, got "x")",
                                 "f.yaml:8: presets[1].inner.count: expected integer >= 0, got -1",
                                 "f.yaml:10: presets[1].mounts[0].path: must not be empty",
                                 "f.yaml:11: presets[2].cpu: expected number >= 0.1, got 0",
                                 R"(f.yaml:12: presets[2].gpu: expected one of [none, a100, h100], got "tpu")",
                             });
  // A list with a bad entry keeps its default as a whole; the other keys are still taken.
  Errors errors;
  Farm f = parse_farm(yaml, errors);
  CHECK(f.presets.empty());
  CHECK(f.size == 3);

  // Under a module's prefix, as module configs are parsed.
  f = parse_farm("presets:\n  - name: a\n  - name: b\n    cpu: x", errors = Errors{}, "modules.jobs");
  CHECK(errors.lines() ==
        std::vector<std::string>{R"(f.yaml:4: modules.jobs.presets[1].cpu: expected number >= 0.1, got "x")"});
}

TEST_CASE("schema: a list of sections must be a list of maps") {
  CHECK(farm_errors("presets: small") ==
        std::vector<std::string>{R"(f.yaml:1: presets: expected a list of maps, got "small")"});
  CHECK(farm_errors("presets: {name: a}") ==
        std::vector<std::string>{"f.yaml:1: presets: expected a list of maps, got a map"});
  CHECK(farm_errors("presets:\n  name: a") ==
        std::vector<std::string>{"f.yaml:2: presets: expected a list of maps, got a map"});
  CHECK(farm_errors("presets: [a, [b], {name: c}]") ==
        std::vector<std::string>{R"(f.yaml:1: presets[0]: expected a map of settings, got "a")",
                                 "f.yaml:1: presets[1]: expected a map of settings, got a list"});
  CHECK(farm_errors("presets:\n  - name: a\n  - ~") ==
        std::vector<std::string>{"f.yaml:3: presets[1]: expected a map of settings, got nothing"});
}

TEST_CASE("schema: unknown and duplicate keys inside list entries") {
  CHECK(farm_errors("presets:\n  - name: a\n  - name: b\n    cpus: 2") ==
        std::vector<std::string>{"f.yaml:4: presets[1].cpus: unknown key 'cpus'; did you mean 'cpu'?"});
  CHECK(farm_errors("presets:\n  - name: a\n    mounts:\n      - pth: /x") ==
        std::vector<std::string>{"f.yaml:4: presets[0].mounts[0].pth: unknown key 'pth'; did you mean 'path'?"});
  CHECK(farm_errors("presets:\n  - name: a\n    name: b") ==
        std::vector<std::string>{"f.yaml:3: presets[0].name: duplicate key"});
}

TEST_CASE("schema: non_empty and check on a list of sections") {
  CHECK(farm_errors("presets: []") == std::vector<std::string>{"f.yaml:1: presets: must not be empty"});
  CHECK(farm_errors("presets:") == std::vector<std::string>{});  // not written: the default, even if empty

  // check() sees the whole parsed list, and runs only when every entry is valid.
  CHECK(farm_errors("presets:\n  - name: a\n  - name: b\n  - name: a") ==
        std::vector<std::string>{"f.yaml:2: presets: duplicate preset name 'a'"});
  CHECK(farm_errors("presets: [{name: a}, {name: a, cpu: 0}]") ==
        std::vector<std::string>{"f.yaml:1: presets[1].cpu: expected number >= 0.1, got 0"});
  Errors errors;
  CHECK(parse_farm("presets: [{name: a}, {name: a}]", errors).presets.empty());

  // Constraints that mean nothing for a list of sections are programming errors.
  struct Holder {
    std::vector<Mount> mounts;
    static void describe(Schema<Holder>&) {}
  };
  Schema<Holder> s;
  CHECK_THROWS_AS(s.field("a", &Holder::mounts, "").min(1), std::logic_error);
  Schema<Holder> t;
  CHECK_THROWS_AS(t.field("a", &Holder::mounts, "").one_of({"x"}), std::logic_error);
  Schema<Holder> u;
  CHECK_THROWS_AS(u.field("a", &Holder::mounts, "").secret(), std::logic_error);
  auto wrong_type = [](const std::vector<Preset>&) -> std::optional<std::string> { return {}; };
  auto right_type = [](const std::vector<Mount>&) -> std::optional<std::string> { return {}; };
  Schema<Holder> v;
  CHECK_THROWS_AS(v.field("a", &Holder::mounts, "").check(wrong_type), std::logic_error);
  Schema<Holder> w;
  CHECK_NOTHROW(w.field("a", &Holder::mounts, "").non_empty().check(right_type));
}

namespace {
// Deletes the "[]" after "key:" at `column`, and the "#" at that column of each commented
// line after it: what an operator does to use the example entry.
std::string uncomment_example(const std::string& ref, const std::string& key, std::size_t column) {
  const std::string pad(column, ' ');
  const auto at = ref.find("\n" + pad + key + ":");
  REQUIRE(at != std::string::npos);
  std::size_t pos = ref.find('\n', at + 1) + 1;
  std::string header = ref.substr(at + 1, pos - at - 1);
  if (auto list = header.find(": []"); list != std::string::npos) header.erase(list + 1, 3);
  std::string out = ref.substr(0, at + 1) + header;
  while (pos < ref.size()) {
    const std::size_t end = ref.find('\n', pos);
    std::string line = ref.substr(pos, end - pos);
    if (!line.starts_with(pad + "#  ")) break;
    out += pad + line.substr(column + 1) + "\n";
    pos = end + 1;
  }
  return out + ref.substr(pos);
}
}  // namespace

TEST_CASE("schema: reference of lists of sections") {
  const std::string ref = config::reference<Farm>(0);
  CHECK(ref == R"(# How big. (default: 2)
size: 2

# Resource presets users pick for jobs.
presets:
#  - name: ""              # Preset name users pick. (default: "")
#    cpu: 1                # CPUs per job. (default: 1; min 0.1)
#    gpu: none             # GPU model. (default: none; one of: none, a100, h100)
#    inner:                # Nested.
#      name: x             # A name. (default: x)
#      count: 3            # How many. (default: 3; min 0)
#    mounts: []            # Volumes.
#    #  - path: /data      # Where it is mounted. (default: /data)
#    #    read_only: true  # Mounted read-only. (default: true)

# Mounts every job gets.
builtin:
  - path: /a         # Where it is mounted. (default: /data)
    read_only: true  # Mounted read-only. (default: true)
  - path: "/b c"
    read_only: false
)");

  // Valid YAML as it is, with the example left commented out, and it reads back as the defaults.
  const YAML::Node doc = YAML::Load(ref);
  CHECK(doc["presets"].IsNull());  // non_empty(): "[]" would be rejected, null keeps the default
  CHECK(doc["builtin"].size() == 2);
  Errors errors;
  CHECK(parse_farm(ref, errors) == Farm{});
  CHECK(errors.lines() == std::vector<std::string>{});

  // Indented under a module, as `neurod config reference` prints it.
  const std::string nested = config::reference<Farm>(4);
  CHECK(nested.find("    presets:\n    #  - name: \"\"  ") != std::string::npos);
  CHECK(nested.find("    builtin:\n      - path: /a  ") != std::string::npos);
  const YAML::Node module = YAML::Load("modules:\n  jobs:\n" + nested);
  CHECK(config::parse<Farm>(module["modules"]["jobs"], "modules.jobs", errors) == Farm{});
  CHECK(errors.empty());

  // Uncommenting the example gives one entry with every key: the only complaint is the
  // required name that the example leaves empty.
  const std::string used = uncomment_example(ref, "presets", 0);
  CHECK(used.find("presets:\n  - name: \"\"") != std::string::npos);
  CHECK(farm_errors(used) == std::vector<std::string>{"f.yaml:6: presets[0].name: must not be empty"});
  Farm f = parse_farm(replace_all_once(used, "name: \"\"", "name: gpu"), errors = Errors{});
  CHECK(errors.lines() == std::vector<std::string>{});
  REQUIRE(f.presets.size() == 1);
  CHECK(f.presets[0] == Preset{"gpu"});
  // The nested example, uncommented the same way in the entry, is valid too.
  const std::string deeper = uncomment_example(replace_all_once(used, "name: \"\"", "name: gpu"), "mounts", 4);
  f = parse_farm(deeper, errors);
  CHECK(errors.lines() == std::vector<std::string>{});
  REQUIRE(f.presets.size() == 1);
  CHECK(f.presets[0].mounts == std::vector<Mount>{Mount{}});
}

namespace {
struct Quiet {
  std::string token = "t0ken";
  static void describe(Schema<Quiet>& s) { s.field("token", &Quiet::token, "").secret(); }
  friend bool operator==(const Quiet&, const Quiet&) = default;
};
struct Empty {
  static void describe(Schema<Empty>&) {}
  friend bool operator==(const Empty&, const Empty&) = default;
};
struct Edges {
  std::vector<Quiet> quiet{Quiet{}};
  std::vector<Empty> empty{Empty{}, Empty{}};
  std::vector<Empty> none;
  static void describe(Schema<Edges>& s) {
    s.field("quiet", &Edges::quiet, "");
    s.field("empty", &Edges::empty, "");
    s.field("none", &Edges::none, "");
  }
  friend bool operator==(const Edges&, const Edges&) = default;
};
}  // namespace

TEST_CASE("schema: reference of list entries that hide secrets or have no keys") {
  const std::string ref = config::reference<Edges>(2);
  CHECK(ref.find("t0ken") == std::string::npos);
  CHECK(ref == R"(  #
  quiet:
    - {}
      # token: <secret>  # (default: <secret>; secret, file:/path reads it from a file)

  #
  empty:
    - {}
    - {}

  #
  none: []
  #  - {}
)");
  Errors errors;
  CHECK(config::parse<Edges>(YAML::Load(ref), "", errors) == Edges{});
  CHECK(errors.empty());
}
