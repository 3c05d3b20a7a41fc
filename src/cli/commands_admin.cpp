// neuro admin user …, admin quota …, admin audit (modules/auth/README.md: Users,
// Quotas, Audit). The server checks that the caller is an admin.
#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"
#include "cli/commands.hpp"
#include "cli/prompt.hpp"
#include "cli/table.hpp"

#include <iostream>

namespace neurod::cli {

namespace {

std::optional<std::string> opt(const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); }

void print_done(Context& ctx, const nlohmann::json& for_json, const std::string& message) {
  if (ctx.json_output())
    print_json(for_json);
  else
    std::cout << message << std::endl;
}

std::string user_path(const std::string& name) { return api("/users/" + principal_segment(name)); }

// --- admin user --------------------------------------------------------------

struct UserAddArgs {
  std::string name;
  std::string email;
  bool admin = false;
  bool password_stdin = false;
};

int run_user_add(Context& ctx, const UserAddArgs& a) {
  nlohmann::json body{{"name", a.name}, {"admin", a.admin}};
  if (!a.email.empty()) body["email"] = a.email;
  if (a.password_stdin) body["password"] = read_stdin_secret("--password-stdin");
  auto answer = ctx.send_json("POST", api("/users"), body);
  print_done(ctx, answer.is_null() ? nlohmann::json{{"name", a.name}} : answer,
             "Created " + std::string(a.admin ? "admin " : "user ") + a.name + ".");
  if (!a.password_stdin)
    std::cerr << "neuro: note: " << a.name
              << " has no password and can only log in with a token an admin creates: set one with `neuro admin "
                 "user set-password "
              << a.name << "`, or create a token on the server with `neurod admin token create " << a.name << "`."
              << std::endl;
  return code(Exit::ok);
}

int run_user_ls(Context& ctx, const std::string& kind) {
  auto list = ctx.get_json(with_query(api("/users"), {{"kind", opt(kind)}}));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"NAME"}, {"KIND"}, {"EMAIL"}, {"ADMIN"}, {"PASSWORD"}, {"CREATED"}});
  if (list.is_array())
    for (const auto& u : list)
      t.add_row({cell(u, "name"), cell(u, "kind"), cell(u, "email"), cell(u, "admin"), cell(u, "has_password"),
                 show_time(field(u, "created_at"))});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_user_rm(Context& ctx, const std::string& name, bool yes) {
  confirm("Delete user " + name + " with their tokens, grants and personal project?", yes);
  ctx.send_json("DELETE", user_path(name));
  print_done(ctx, {{"name", name}, {"removed", true}}, "Deleted user " + name + ".");
  return code(Exit::ok);
}

int run_user_set_password(Context& ctx, const std::string& name, bool password_stdin) {
  auto password = password_stdin ? read_stdin_secret("--password-stdin")
                                 : prompt_new_password("Pass the password on stdin with --password-stdin.");
  ctx.send_json("PUT", user_path(name) + "/password", nlohmann::json{{"password", password}});
  print_done(ctx, {{"name", name}, {"password_set", true}},
             "Set the password of " + name + "; their login sessions were ended.");
  return code(Exit::ok);
}

// --- admin quota -------------------------------------------------------------

struct QuotaTarget {
  std::string user;
  std::string project;
};

// "/api/v1/admin/quotas/users/alice"; kind is "user" or "project".
std::pair<std::string, std::string> quota_target(const QuotaTarget& t) {
  if (t.user.empty() == t.project.empty()) throw CliError(Exit::usage, "give exactly one of --user and --project");
  if (!t.user.empty()) return {api("/admin/quotas/users/" + path_segment(t.user)), "user"};
  return {api("/admin/quotas/projects/" + path_segment(t.project)), "project"};
}

struct QuotaSetArgs {
  QuotaTarget target;
  std::string max_running_jobs;
  std::string cpu_hours;
  std::string gpu_hours;
  std::string storage;
  std::string period;
};

void print_quota(Context& ctx, const nlohmann::json& answer, const std::string& kind, const std::string& fallback) {
  if (ctx.json_output())
    print_json(answer);
  else if (answer.is_object() && answer.contains("limits"))
    std::cout << render_quota(kind, answer) << std::flush;
  else
    std::cout << fallback << std::endl;
}

int run_quota_set(Context& ctx, const QuotaSetArgs& a) {
  auto [path, kind] = quota_target(a.target);
  nlohmann::json body = nlohmann::json::object();
  auto add = [&body](const char* key, const char* option, LimitKind k, const std::string& value) {
    if (!value.empty()) body[key] = parse_limit(option, k, value);
  };
  add("max_running_jobs", "--max-running-jobs", LimitKind::count, a.max_running_jobs);
  add("cpu_hours", "--cpu-hours", LimitKind::hours, a.cpu_hours);
  add("gpu_hours", "--gpu-hours", LimitKind::hours, a.gpu_hours);
  add("storage_bytes", "--storage", LimitKind::bytes, a.storage);
  add("period", "--period", LimitKind::period, a.period);
  if (body.empty())
    throw CliError(Exit::usage,
                   "nothing to set: give at least one of --max-running-jobs, --cpu-hours, --gpu-hours, --storage and "
                   "--period");
  auto answer = ctx.send_json("PUT", path, body);
  auto name = kind == "user" ? a.target.user : a.target.project;
  print_quota(ctx, answer.is_null() ? body : answer, kind, "Updated the quota of " + kind + " " + name + ".");
  return code(Exit::ok);
}

int run_quota_get(Context& ctx, const QuotaTarget& t) {
  auto [path, kind] = quota_target(t);
  auto answer = ctx.get_json(path);
  print_quota(ctx, answer, kind, answer.dump());
  return code(Exit::ok);
}

int run_quota_reset(Context& ctx, const QuotaTarget& t) {
  auto [path, kind] = quota_target(t);
  ctx.send_json("DELETE", path);
  auto name = kind == "user" ? t.user : t.project;
  print_done(ctx, {{kind, name}, {"reset", true}}, "The quota of " + kind + " " + name + " is back to the defaults.");
  return code(Exit::ok);
}

// --- admin audit -------------------------------------------------------------

struct AuditArgs {
  std::string user;
  std::string since;
  std::string until;
  std::string resource;
  int limit = 0;
  std::string before;
};

std::string time_arg(const char* option, const std::string& text) {
  if (text.empty()) return {};
  auto t =
      parse_time_arg(text, std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()));
  if (!t)
    throw CliError(Exit::usage, std::string(option) + ": \"" + text +
                                    "\" is neither a time such as 2024-05-01T12:00:00Z nor a duration such as 2h");
  return *t;
}

// The first of several names a field may have.
std::string first_cell(const nlohmann::json& entry, std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (auto v = cell(entry, key); !v.empty()) return v;
  return {};
}

int run_audit(Context& ctx, const AuditArgs& a) {
  auto since = time_arg("--since", a.since);
  auto until = time_arg("--until", a.until);
  auto answer =
      ctx.get_json(with_query(api("/audit"), {{"user", opt(a.user)},
                                              {"since", opt(since)},
                                              {"until", opt(until)},
                                              {"resource", opt(a.resource)},
                                              {"limit", a.limit > 0 ? opt(std::to_string(a.limit)) : std::nullopt},
                                              {"before", opt(a.before)}}));
  if (ctx.json_output()) {
    print_json(answer);
    return code(Exit::ok);
  }
  Table t({{"TIME"}, {"USER"}, {"METHOD"}, {"PATH"}, {"STATUS", Align::right}, {"SOURCE"}});
  const auto& entries = answer.is_array() ? answer : field(answer, "entries");
  if (entries.is_array())
    for (const auto& e : entries)
      t.add_row({show_time(field(e, "at").is_null() ? field(e, "time") : field(e, "at")),
                 first_cell(e, {"principal", "user"}), cell(e, "method"), cell(e, "path"), cell(e, "status"),
                 first_cell(e, {"remote", "source"})});
  std::cout << t.render(false) << std::flush;
  if (auto next = cell(answer, "next"); !next.empty())
    std::cerr << "neuro: more entries: add --before " << next << std::endl;
  return code(Exit::ok);
}

// --- registration ------------------------------------------------------------

void register_user(CLI::App* admin, Context& ctx) {
  auto* user = admin->add_subcommand("user", "Add, list and remove users; set passwords");
  user->require_subcommand(1);

  auto* add = user->add_subcommand("add", "Create a user (and their personal project)");
  auto a = std::make_shared<UserAddArgs>();
  add->add_option("NAME", a->name, "[a-z][a-z0-9_-]{0,39}")->required();
  add->add_option("--email", a->email, "Their e-mail address")->type_name("EMAIL");
  add->add_flag("--admin", a->admin, "Make them a cluster admin");
  add->add_flag("--password-stdin", a->password_stdin, "Read their password from stdin (else they have none)");
  on_run(add, ctx, [&ctx, a] { return run_user_add(ctx, *a); });

  auto* ls = user->add_subcommand("ls", "List users");
  auto kind = std::make_shared<std::string>();
  ls->add_option("--kind", *kind, "Only this kind of principal")
      ->check(CLI::IsMember({"user", "service", "role"}))
      ->type_name("KIND");
  on_run(ls, ctx, [&ctx, kind] { return run_user_ls(ctx, *kind); });

  auto* rm = user->add_subcommand("rm", "Delete a user with their tokens, grants and personal project");
  auto rm_name = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  rm->add_option("NAME", *rm_name, "The user")->required();
  rm->add_flag("-y,--yes", *yes, "Do not ask for confirmation");
  on_run(rm, ctx, [&ctx, rm_name, yes] { return run_user_rm(ctx, *rm_name, *yes); });

  auto* pw = user->add_subcommand("set-password", "Set a user's password (asked twice, or read from stdin)");
  auto pw_name = std::make_shared<std::string>();
  auto pw_stdin = std::make_shared<bool>(false);
  pw->add_option("NAME", *pw_name, "The user")->required();
  pw->add_flag("--password-stdin", *pw_stdin, "Read the password from stdin");
  on_run(pw, ctx, [&ctx, pw_name, pw_stdin] { return run_user_set_password(ctx, *pw_name, *pw_stdin); });
}

void add_target(CLI::App* cmd, QuotaTarget& t) {
  auto* u = cmd->add_option("--user", t.user, "A user's quota")->type_name("USER");
  cmd->add_option("--project", t.project, "A project's quota")->type_name("PROJECT")->excludes(u);
}

void register_quota(CLI::App* admin, Context& ctx) {
  auto* quota = admin->add_subcommand("quota", "Set and show the quota of a user or project");
  quota->require_subcommand(1);

  auto* set = quota->add_subcommand("set", "Change limits (\"unlimited\" clears one); others stay as they are");
  auto s = std::make_shared<QuotaSetArgs>();
  add_target(set, s->target);
  set->add_option("--max-running-jobs", s->max_running_jobs, "Jobs running at once")->type_name("N");
  set->add_option("--cpu-hours", s->cpu_hours, "CPU hours per period")->type_name("H");
  set->add_option("--gpu-hours", s->gpu_hours, "GPU hours per period")->type_name("H");
  set->add_option("--storage", s->storage, "Storage, e.g. 100GiB")->type_name("SIZE");
  set->add_option("--period", s->period, "The rolling period of the hours, e.g. 30d")->type_name("DURATION");
  on_run(set, ctx, [&ctx, s] { return run_quota_set(ctx, *s); });

  auto* get = quota->add_subcommand("get", "Show limits and usage");
  auto g = std::make_shared<QuotaTarget>();
  add_target(get, *g);
  on_run(get, ctx, [&ctx, g] { return run_quota_get(ctx, *g); });

  auto* reset = quota->add_subcommand("reset", "Go back to the default limits");
  auto r = std::make_shared<QuotaTarget>();
  add_target(reset, *r);
  on_run(reset, ctx, [&ctx, r] { return run_quota_reset(ctx, *r); });
}

void register_audit(CLI::App* admin, Context& ctx) {
  auto* audit = admin->add_subcommand("audit", "Show the audit log of mutating requests, newest first");
  auto a = std::make_shared<AuditArgs>();
  audit->add_option("--user", a->user, "Only this principal's requests")->type_name("USER");
  audit->add_option("--since", a->since, "From this time: ISO-8601, or a duration ago such as 2h")->type_name("TIME");
  audit->add_option("--until", a->until, "Up to this time (same forms)")->type_name("TIME");
  audit->add_option("--resource", a->resource, "Only requests on this resource URI")->type_name("URI");
  audit->add_option("--limit", a->limit, "At most N entries")->type_name("N")->check(CLI::PositiveNumber);
  audit->add_option("--before", a->before, "The next page: the cursor printed after the previous one")
      ->type_name("CURSOR");
  on_run(audit, ctx, [&ctx, a] { return run_audit(ctx, *a); });
}

}  // namespace

void register_admin_commands(CLI::App& app, Context& ctx) {
  auto* admin = app.add_subcommand("admin", "Administer users, quotas and the audit log (admins only)");
  admin->require_subcommand(1);
  register_user(admin, ctx);
  register_quota(admin, ctx);
  register_audit(admin, ctx);
}

}  // namespace neurod::cli
