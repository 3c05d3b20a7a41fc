// The module lifecycle: planning (roles, enabled, dependencies, cycles), atomic
// start-up failure and reverse-order stop.
#include "http/test_module.hpp"
#include "support/server/server.hpp"

#include <doctest/doctest.h>
#include <fmt/ranges.h>

using namespace neurod;

namespace {

app::ModuleInfo fake(std::string name, std::vector<std::string> deps, app::Roles roles = app::kBothRoles) {
  app::ModuleInfo m;
  m.name = std::move(name);
  m.depends = std::move(deps);
  m.roles = roles;
  return m;
}

config::LoadedConfig cfg_with(std::vector<std::string> roles, std::map<std::string, bool> enabled = {}) {
  config::LoadedConfig c;
  c.global.roles = std::move(roles);
  c.enabled = std::move(enabled);
  return c;
}

std::vector<std::string> names(const std::vector<const app::ModuleInfo*>& plan) {
  std::vector<std::string> out;
  for (auto* m : plan) out.push_back(m->name);
  return out;
}

}  // namespace

TEST_CASE("plan: dependencies first, in a stable order") {
  std::vector<app::ModuleInfo> mods{fake("jobs", {"auth"}), fake("auth", {}), fake("storage", {"auth"})};
  CHECK(names(app::plan_modules(cfg_with({"control-plane", "compute"}), mods)) ==
        std::vector<std::string>{"auth", "jobs", "storage"});
}

TEST_CASE("plan: roles and enabled pick the modules") {
  std::vector<app::ModuleInfo> mods{fake("auth", {}, app::kControlPlane), fake("executor", {}, app::kCompute),
                                    fake("system", {})};
  CHECK(names(app::plan_modules(cfg_with({"compute"}), mods)) == std::vector<std::string>{"executor", "system"});
  CHECK(names(app::plan_modules(cfg_with({"control-plane"}), mods)) == std::vector<std::string>{"auth", "system"});
  CHECK(names(app::plan_modules(cfg_with({"control-plane", "compute"}, {{"executor", false}}), mods)) ==
        std::vector<std::string>{"auth", "system"});
}

TEST_CASE("plan: a cycle is an error that prints the chain") {
  std::vector<app::ModuleInfo> mods{fake("a", {"b"}), fake("b", {"c"}), fake("c", {"a"})};
  try {
    app::plan_modules(cfg_with({"compute"}), mods);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "module dependency cycle: a -> b -> c -> a");
  }
}

TEST_CASE("plan: a disabled dependency is named") {
  std::vector<app::ModuleInfo> mods{fake("jobs", {"auth"}), fake("auth", {})};
  CHECK_THROWS_WITH(app::plan_modules(cfg_with({"compute"}, {{"auth", false}}), mods),
                    doctest::Contains("module 'jobs' depends on 'auth', which is disabled"));
  std::vector<app::ModuleInfo> missing{fake("jobs", {"nope"})};
  CHECK_THROWS_WITH(app::plan_modules(cfg_with({"compute"}), missing), doctest::Contains("not compiled in"));
}

TEST_CASE("start-up failure tears down what was built, in reverse, and names the module") {
  testing::lifecycle_log().clear();
  test::ServerSpec spec;
  spec.extra_modules.push_back(app::describe_module<testing::Module>());
  spec.extra_modules.push_back(app::describe_module<testing::Boom>());
  try {
    test::TestServer server(spec);
    FAIL("start-up should have failed");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "cannot start module 'boom': the disk is on fire");
  }
  CHECK(testing::lifecycle_log() ==
        std::vector<std::string>{"construct testing", "stopping testing", "destroy testing"});
}

TEST_CASE("stop runs on_stopping and destruction in reverse order") {
  testing::lifecycle_log().clear();
  test::ServerSpec spec;
  spec.extra_modules.push_back(app::describe_module<testing::Module>());
  {
    test::TestServer server(spec);
    const auto running = server.app().running_modules();
    CHECK(fmt::format("{}", fmt::join(running, " ")) == "system auth executor storage secrets jobs registry monitoring notifications console testing");
  }
  CHECK(testing::lifecycle_log() == std::vector<std::string>{"construct testing", "stopping testing", "destroy testing"});
}

TEST_CASE("module config comes from its YAML section") {
  test::ServerSpec spec;
  spec.extra_modules.push_back(app::describe_module<testing::Module>());
  spec.extra_yaml = "modules:\n  testing:\n    greeting: salut\n";
  test::TestServer server(spec);
  CHECK(server.client().request("POST", "/test/echo", "x").json()["greeting"] == "salut");
}

TEST_CASE_TEMPLATE("health reports the database on both backends", B, NEUROD_DB_BACKENDS) {
  test::ServerSpec spec;
  spec.backend = B::kDialect == db::Dialect::sqlite ? test::Backend::sqlite : test::Backend::postgres;
  test::TestServer server(spec);
  auto h = server.client().get("/api/v1/health");
  CHECK(h.status == 200);
  CHECK(h.json()["modules"]["system"]["details"]["database"]["dialect"] == db::to_string(B::kDialect));
}
