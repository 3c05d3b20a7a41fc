#include "config/loader.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace config = neurod::config;
using config::ConfigError;
using config::Schema;
using config::SectionSpec;

namespace {

struct SystemConfig {
  std::string motd = "hello";
  int retention_days = 30;
  static void describe(Schema<SystemConfig>& s) {
    s.field("motd", &SystemConfig::motd, "Message of the day.");
    s.field("retention_days", &SystemConfig::retention_days, "Days to keep events.").min(1);
  }
};

struct EmptyConfig {
  static void describe(Schema<EmptyConfig>&) {}
};

// What app::describe_module<M>() does, without the app library.
template <class C>
SectionSpec spec(std::string name) {
  return SectionSpec{
      std::move(name),
      [](const YAML::Node& node, const std::string& prefix, config::Errors& errors) {
        return std::static_pointer_cast<void>(std::make_shared<C>(config::parse<C>(node, prefix, errors)));
      },
      [](int indent) { return config::reference<C>(indent); },
  };
}

const std::vector<SectionSpec>& specs() {
  static const std::vector<SectionSpec> s{spec<SystemConfig>("system"), spec<EmptyConfig>("jobs")};
  return s;
}

const SystemConfig& system_of(const config::LoadedConfig& c) {
  return *std::static_pointer_cast<SystemConfig>(c.modules.at("system"));
}

std::vector<std::string> load_errors(const std::string& yaml, const std::vector<SectionSpec>& modules = specs()) {
  try {
    config::load_string(yaml, "neurod.yaml", modules);
  } catch (const ConfigError& e) {
    return e.errors;
  }
  return {};
}

}  // namespace

TEST_CASE("loader: an empty document gives every default, every module enabled") {
  auto c = config::load_string("", "neurod.yaml", specs());
  CHECK(c.file == "neurod.yaml");
  CHECK(c.global.cluster_name == "default");
  CHECK(c.global.http.listen == "127.0.0.1:8080");
  CHECK(c.global.roles == std::vector<std::string>{"control-plane", "compute"});
  REQUIRE(c.modules.size() == 2);
  CHECK(system_of(c).motd == "hello");
  CHECK(c.modules.at("jobs") != nullptr);
  CHECK(c.enabled == std::map<std::string, bool>{{"jobs", true}, {"system", true}});
}

TEST_CASE("loader: global sections and module sections") {
  auto c = config::load_string(R"(
cluster_name: lab
data_dir: /srv/neurod
roles: [compute]
log: {level: debug, format: json}
http:
  listen: "[::1]:0"
  io_threads: 4
  max_body_size: 2MiB
  idle_timeout: 2m
database:
  url: postgresql://u@db/neurod
modules:
  system:
    motd: hi
    enabled: false
  jobs:
)",
                               "neurod.yaml", specs());
  CHECK(c.global.cluster_name == "lab");
  CHECK(c.global.data_dir == "/srv/neurod");
  CHECK(c.global.roles == std::vector<std::string>{"compute"});
  CHECK(c.global.log.level == "debug");
  CHECK(c.global.log.format == "json");
  CHECK(c.global.http.listen == "[::1]:0");
  CHECK(c.global.http.io_threads == 4);
  CHECK(c.global.http.max_body_size.bytes == 2u << 20);
  CHECK(c.global.http.idle_timeout == neurod::Duration(120000));
  CHECK(c.global.http.blocking_threads == 8);
  CHECK(c.global.database.url == "postgresql://u@db/neurod");
  CHECK(system_of(c).motd == "hi");
  CHECK(system_of(c).retention_days == 30);
  CHECK_FALSE(c.enabled.at("system"));
  CHECK(c.enabled.at("jobs"));
}

TEST_CASE("loader: all errors of the whole file at once, with lines and dotted keys") {
  unsetenv("NEUROD_T_NOPE");
  const std::string yaml = R"(cluster_name: Lab
roles: [gpu]
lgo:
  level: info
http:
  listn: 0.0.0.0:80
  io_threads: 0
  max_upload_size: 10XB
  tls:
    cert: /etc/neurod/cert.pem
database:
  url: mysql://x
  pool_size: ${NEUROD_T_NOPE}
modules:
  sytem:
    motd: x
  jobs:
    enabled: perhaps
    foo: 1
  system:
    retention_days: ten
    enabld: true
)";
  CHECK(
      load_errors(yaml) ==
      std::vector<std::string>{
          R"(neurod.yaml:1: cluster_name: expected a lowercase name (a letter, then up to 39 letters, digits or '-'), got "Lab")",
          R"(neurod.yaml:2: roles: expected one of [control-plane, compute], got "gpu")",
          "neurod.yaml:3: lgo: unknown key 'lgo'; did you mean 'log'?",
          "neurod.yaml:6: http.listn: unknown key 'listn'; did you mean 'listen'?",
          "neurod.yaml:7: http.io_threads: expected integer between 1 and 64, got 0",
          R"(neurod.yaml:8: http.max_upload_size: expected a size like 10GiB, got "10XB")",
          "neurod.yaml:10: http.tls: cert and key must be set together (or neither)",
          R"(neurod.yaml:12: database.url: expected sqlite:<path> or postgresql://..., got a URL starting with "mysql:")",
          "neurod.yaml:13: database.pool_size: environment variable NEUROD_T_NOPE is not set",
          "neurod.yaml:15: modules.sytem: unknown module 'sytem'; did you mean 'system'?",
          R"(neurod.yaml:18: modules.jobs.enabled: expected true or false, got "perhaps")",
          "neurod.yaml:19: modules.jobs.foo: unknown key 'foo'",
          R"(neurod.yaml:21: modules.system.retention_days: expected integer >= 1, got "ten")",
          "neurod.yaml:22: modules.system.enabld: unknown key 'enabld'",
      });
  try {
    config::load_string(yaml, "neurod.yaml", specs());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("\nneurod.yaml:7: http.io_threads:") != std::string::npos);
  }
}

TEST_CASE("loader: structural errors") {
  CHECK(load_errors("- a\n- b") == std::vector<std::string>{"neurod.yaml:1: expected a map of settings, got a list"});
  CHECK(load_errors("modules: [system]") ==
        std::vector<std::string>{"neurod.yaml:1: modules: expected a map of settings, got a list"});
  CHECK(load_errors("modules:\n  system: 5") ==
        std::vector<std::string>{R"(neurod.yaml:2: modules.system: expected a map of settings, got "5")"});
  CHECK(load_errors("modules:\n  system: {}\n  system: {}") ==
        std::vector<std::string>{"neurod.yaml:3: modules.system: duplicate key"});
  CHECK(load_errors("modules:\n  system: {}", {}) ==
        std::vector<std::string>{"neurod.yaml:2: modules.system: unknown module 'system'"});
  CHECK(load_errors("modulse: {}") ==
        std::vector<std::string>{"neurod.yaml:1: modulse: unknown key 'modulse'; did you mean 'modules'?"});
}

TEST_CASE("loader: YAML syntax errors carry a line") {
  auto errors = load_errors("log:\n  level: info\n  format: [text\nhttp: {}\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("neurod.yaml:"));
  CHECK(errors[0].find(": invalid YAML: ") != std::string::npos);
  CHECK(errors[0].rfind("neurod.yaml:0", 0) == std::string::npos);

  errors = load_errors("a: 1\n  b: 2\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("neurod.yaml:2: invalid YAML: "));
}

TEST_CASE("loader: load_file") {
  neurod::test::TempDir dir;
  auto path = dir.write("neurod.yaml", "http:\n  listen: 127.0.0.1:9\nmodules:\n  system: {motd: yo}\n");
  auto c = config::load_file(path, specs());
  CHECK(c.file == path.string());
  CHECK(c.global.http.listen == "127.0.0.1:9");
  CHECK(system_of(c).motd == "yo");

  auto bad = dir.write("bad.yaml", "\n\nhttp:\n  io_threads: 100\n");
  try {
    config::load_file(bad, specs());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.errors ==
          std::vector<std::string>{bad.string() + ":4: http.io_threads: expected integer between 1 and 64, got 100"});
  }

  const auto missing = dir / "missing.yaml";
  try {
    config::load_file(missing, specs());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.errors == std::vector<std::string>{"cannot read " + missing.string() + ": No such file or directory"});
    CHECK(std::string(e.what()) == e.errors[0]);
  }
  try {
    config::load_file(dir.path(), specs());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.errors == std::vector<std::string>{"cannot read " + dir.path().string() + ": is a directory"});
  }
}

TEST_CASE("loader: the reference document lists everything and parses back to the defaults") {
  const std::string ref = config::reference_document(specs());
  CHECK(ref.starts_with("# neurod configuration reference"));
  CHECK(ref.find("\n# Address and port to listen on; port 0 picks a free port. (default: 127.0.0.1:8080)\n"
                 "  listen: 127.0.0.1:8080\n") == std::string::npos);  // nested: indented comment too
  CHECK(ref.find("\n  # Address and port to listen on; port 0 picks a free port. (default: 127.0.0.1:8080)\n"
                 "  listen: 127.0.0.1:8080\n") != std::string::npos);
  CHECK(ref.find("\ncluster_name: default\n") != std::string::npos);
  CHECK(ref.find("\nroles: [control-plane, compute]\n") != std::string::npos);
  CHECK(ref.find("  max_upload_size: 64GiB\n") != std::string::npos);
  CHECK(ref.find("  header_timeout: 10s\n") != std::string::npos);
  CHECK(ref.find("\nmodules:\n  system:\n") != std::string::npos);
  CHECK(ref.find("    enabled: true\n\n    # Message of the day. (default: hello)\n    motd: hello\n") !=
        std::string::npos);
  CHECK(ref.find("  jobs:\n    # Set to false") != std::string::npos);

  auto c = config::load_string(ref, "neurod.reference.yaml", specs());
  const config::GlobalConfig defaults;
  CHECK(c.global.cluster_name == defaults.cluster_name);
  CHECK(c.global.data_dir == defaults.data_dir);
  CHECK(c.global.roles == defaults.roles);
  CHECK(c.global.http.listen == defaults.http.listen);
  CHECK(c.global.http.max_upload_size == defaults.http.max_upload_size);
  CHECK(c.global.http.drain_timeout == defaults.http.drain_timeout);
  CHECK(c.global.database.url == defaults.database.url);
  CHECK(system_of(c).motd == "hello");
  CHECK(c.enabled.at("system"));

  // With no modules at all.
  const std::string bare = config::reference_document({});
  CHECK(bare.ends_with("modules: {}\n"));
  CHECK_NOTHROW(config::load_string(bare, "r.yaml", {}));
}

TEST_CASE("loader: the example configs in config/ load without errors") {
  setenv("NEUROD_DATABASE_URL", "postgresql://neurod:pw@db:5432/neurod", 1);
  unsetenv("NEUROD_DATA_DIR");
  const std::vector<SectionSpec> system_only{spec<SystemConfig>("system")};
  for (const char* name : {"neurod.yaml", "control-plane.yaml", "compute-node.yaml"}) {
    CAPTURE(name);
    const auto path = std::filesystem::path(NEUROD_SOURCE_DIR) / "config" / name;
    try {
      auto c = config::load_file(path, system_only);
      CHECK(c.enabled.at("system"));
    } catch (const ConfigError& e) {
      FAIL(e.what());
    }
  }
  auto all_in_one = config::load_file(std::filesystem::path(NEUROD_SOURCE_DIR) / "config/neurod.yaml", system_only);
  CHECK(all_in_one.global.data_dir == "./data");
  CHECK(all_in_one.global.http.listen == "127.0.0.1:8080");
  CHECK(all_in_one.global.database.url.starts_with("sqlite:"));
  auto cp = config::load_file(std::filesystem::path(NEUROD_SOURCE_DIR) / "config/control-plane.yaml", system_only);
  CHECK(cp.global.roles == std::vector<std::string>{"control-plane"});
  CHECK(cp.global.database.url == "postgresql://neurod:pw@db:5432/neurod");
  auto cn = config::load_file(std::filesystem::path(NEUROD_SOURCE_DIR) / "config/compute-node.yaml", system_only);
  CHECK(cn.global.roles == std::vector<std::string>{"compute"});

  unsetenv("NEUROD_DATABASE_URL");
  CHECK_THROWS_WITH_AS(
      config::load_file(std::filesystem::path(NEUROD_SOURCE_DIR) / "config/control-plane.yaml", system_only),
      doctest::Contains("database.url: environment variable NEUROD_DATABASE_URL is not set"), ConfigError);
}
