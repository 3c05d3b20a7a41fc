#include "cli/config_file.hpp"
#include "core/errors.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

using neurod::cli::EnvLookup;
using neurod::cli::Source;
using neurod::cli::UserConfig;
using neurod::test::TempDir;
namespace fs = std::filesystem;

namespace {

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string load_error(const fs::path& p) {
  try {
    neurod::cli::load_user_config(p);
  } catch (const neurod::Error& e) {
    CHECK(e.code() == neurod::errc::invalid_argument);
    return e.what();
  }
  FAIL("no error for " << p);
  return {};
}

// Sets or unsets an environment variable for one scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("cli config: the file's path comes from NEURO_CONFIG, then XDG_CONFIG_HOME, then HOME") {
  using neurod::cli::user_config_path;
  CHECK(user_config_path(fake_env({{"NEURO_CONFIG", "/x/c.yaml"}, {"XDG_CONFIG_HOME", "/xdg"}, {"HOME", "/h"}})) ==
        fs::path("/x/c.yaml"));
  CHECK(user_config_path(fake_env({{"XDG_CONFIG_HOME", "/xdg"}, {"HOME", "/h"}})) ==
        fs::path("/xdg/neuro/config.yaml"));
  CHECK(user_config_path(fake_env({{"XDG_CONFIG_HOME", ""}, {"HOME", "/h"}})) ==
        fs::path("/h/.config/neuro/config.yaml"));
  CHECK_THROWS_AS(user_config_path(fake_env({})), neurod::Error);
}

TEST_CASE("cli config: process_env reads the real environment and treats empty as unset") {
  ScopedEnv a("NEURO_TEST_CLI_VAR", "value");
  ScopedEnv b("NEURO_TEST_CLI_EMPTY", "");
  auto env = neurod::cli::process_env();
  CHECK(env("NEURO_TEST_CLI_VAR") == std::optional<std::string>("value"));
  CHECK_FALSE(env("NEURO_TEST_CLI_EMPTY"));
  CHECK_FALSE(env("NEURO_TEST_CLI_UNSET_SURELY"));
}

TEST_CASE("cli config: the URL is the flag, else NEURO_URL, else the file, else the default") {
  using neurod::cli::resolve_settings;
  UserConfig file;
  file.url = "http://from-file:1";
  auto env = fake_env({{"NEURO_URL", "http://from-env:2"}});

  auto s = resolve_settings(std::string("http://from-flag:3"), env, file);
  CHECK(s.url == "http://from-flag:3");
  CHECK(s.url_source == Source::flag);

  s = resolve_settings(std::nullopt, env, file);
  CHECK(s.url == "http://from-env:2");
  CHECK(s.url_source == Source::env);

  s = resolve_settings(std::nullopt, fake_env({{"NEURO_URL", ""}}), file);
  CHECK(s.url == "http://from-file:1");
  CHECK(s.url_source == Source::file);

  s = resolve_settings(std::string(""), fake_env({}), UserConfig{});
  CHECK(s.url == "http://127.0.0.1:8080");
  CHECK(s.url_source == Source::default_value);
  CHECK(neurod::cli::to_string(s.url_source) == "default");
}

TEST_CASE("cli config: the token is NEURO_TOKEN, else the file, else none") {
  using neurod::cli::resolve_settings;
  UserConfig file;
  file.token = "file-token";
  auto s = resolve_settings(std::nullopt, fake_env({{"NEURO_TOKEN", "env-token"}}), file);
  CHECK(s.token == "env-token");
  CHECK(s.token_source == Source::env);
  s = resolve_settings(std::nullopt, fake_env({}), file);
  CHECK(s.token == "file-token");
  CHECK(s.token_source == Source::file);
  s = resolve_settings(std::nullopt, fake_env({}), UserConfig{});
  CHECK(s.token.empty());
  CHECK(s.token_source == Source::none);
}

TEST_CASE("cli config: precedence through the real environment and a real file") {
  TempDir dir;
  auto path = dir.write("neuro/config.yaml", "url: http://file-host:9000\ntoken: t0k\n");
  ScopedEnv cfg("NEURO_CONFIG", path.c_str());
  ScopedEnv url("NEURO_URL", nullptr);
  ScopedEnv token("NEURO_TOKEN", nullptr);
  auto env = neurod::cli::process_env();
  auto file = neurod::cli::load_user_config(neurod::cli::user_config_path(env));

  auto s = neurod::cli::resolve_settings(std::nullopt, env, file);
  CHECK(s.url == "http://file-host:9000");
  CHECK(s.token == "t0k");
  {
    ScopedEnv u("NEURO_URL", "http://env-host:1");
    CHECK(neurod::cli::resolve_settings(std::nullopt, env, file).url == "http://env-host:1");
    CHECK(neurod::cli::resolve_settings(std::string("http://flag:2"), env, file).url == "http://flag:2");
  }
  CHECK(neurod::cli::resolve_settings(std::nullopt, env, file).url == "http://file-host:9000");
}

TEST_CASE("cli config: a missing or empty file is an empty config") {
  TempDir dir;
  auto c = neurod::cli::load_user_config(dir / "nope.yaml");
  CHECK(c.url.empty());
  CHECK(c.token.empty());
  c = neurod::cli::load_user_config(dir.write("empty.yaml", ""));
  CHECK(c.url.empty());
  c = neurod::cli::load_user_config(dir.write("comment.yaml", "# nothing here\n"));
  CHECK(c.url.empty());
  c = neurod::cli::load_user_config(dir.write("nulls.yaml", "url:\ntoken: ~\n"));
  CHECK(c.url.empty());
  CHECK(c.token.empty());
}

TEST_CASE("cli config: saved with mode 0600 in a 0700 directory, atomically, and read back") {
  TempDir dir;
  auto path = dir / "sub" / "neuro" / "config.yaml";
  UserConfig c;
  c.url = "https://gpu-box:8443";
  c.token = "secret: with colon";
  neurod::cli::save_user_config(path, c);

  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path.parent_path()) == 0700);
  auto back = neurod::cli::load_user_config(path);
  CHECK(back.url == c.url);
  CHECK(back.token == c.token);

  // A rewrite replaces the file and leaves no temporary files behind.
  back.url = "http://other:1";
  neurod::cli::save_user_config(path, back);
  CHECK(neurod::cli::load_user_config(path).url == "http://other:1");
  CHECK(mode_of(path) == 0600);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(path.parent_path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("cli config: an existing file with loose permissions is tightened on rewrite") {
  TempDir dir;
  auto path = dir.write("config.yaml", "url: http://a:1\n");
  ::chmod(path.c_str(), 0644);
  auto c = neurod::cli::load_user_config(path);
  neurod::cli::save_user_config(path, c);
  CHECK(mode_of(path) == 0600);
}

TEST_CASE("cli config: keys this version does not know survive a rewrite") {
  TempDir dir;
  auto path = dir.write("config.yaml", "url: http://a:1\ncluster: gpu\njob:\n  ps-format: wide\n  life-span: 1d\n");
  auto c = neurod::cli::load_user_config(path);
  c.url = "http://b:2";
  neurod::cli::save_user_config(path, c);

  auto text = slurp(path);
  auto node = YAML::LoadFile(path.string());
  CHECK(node["url"].as<std::string>() == "http://b:2");
  CHECK(node["cluster"].as<std::string>() == "gpu");
  CHECK(node["job"]["ps-format"].as<std::string>() == "wide");
  CHECK(node["job"]["life-span"].as<std::string>() == "1d");
  CHECK_FALSE(node["token"]);  // not set: not written
}

TEST_CASE("cli config: a malformed file gives an error naming the file and the line") {
  TempDir dir;
  SUBCASE("bad YAML syntax") {
    auto path = dir.write("bad.yaml", "url: http://a:1\ntoken: [unclosed\nother: 1\n");
    auto msg = load_error(path);
    CHECK(msg.find(path.string() + ":") == 0);
    CHECK(msg.find("malformed YAML") != std::string::npos);
    INFO(msg);
    // yaml-cpp reports the unclosed flow sequence on line 2 or 3 depending on the
    // version; either way it is a 1-based line number inside the file.
    CHECK((msg.find(path.string() + ":2:") == 0 || msg.find(path.string() + ":3:") == 0 ||
           msg.find(path.string() + ":4:") == 0));
  }
  SUBCASE("a tab-indented mapping") {
    auto path = dir.write("tab.yaml", "url: http://a:1\n\ttoken: x\n");
    auto msg = load_error(path);
    CHECK(msg.find(path.string() + ":") == 0);
  }
  SUBCASE("not a mapping") {
    auto path = dir.write("list.yaml", "- url\n- token\n");
    auto msg = load_error(path);
    CHECK(msg.find(path.string() + ":1:") == 0);
    CHECK(msg.find("expected a mapping") != std::string::npos);
  }
  SUBCASE("url is not a string") {
    auto path = dir.write("map.yaml", "token: abc\nurl:\n  host: a\n");
    auto msg = load_error(path);
    CHECK(msg.find(path.string() + ":3:") == 0);
    CHECK(msg.find("'url' must be a string") != std::string::npos);
  }
}

TEST_CASE("cli config: saving into a place that cannot hold a directory fails clearly") {
  TempDir dir;
  auto blocker = dir.write("file", "x");
  UserConfig c;
  c.url = "http://a:1";
  try {
    neurod::cli::save_user_config(blocker / "neuro" / "config.yaml", c);
    FAIL("no error");
  } catch (const neurod::Error& e) {
    CHECK(std::string(e.what()).find("cannot") == 0);
  }
}
