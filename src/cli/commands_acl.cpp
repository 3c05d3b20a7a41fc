// neuro acl …, role …, project … (modules/auth/README.md: Permissions, Roles, Projects).
#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"
#include "cli/commands.hpp"
#include "cli/prompt.hpp"
#include "cli/table.hpp"

#include <iostream>

namespace neurod::cli {

namespace {

std::optional<std::string> opt(const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); }

std::string permissions_path(std::string_view principal) {
  return api("/users/" + principal_segment(principal) + "/permissions");
}

// The principal whose permissions are read: -u USER, else the caller.
std::string subject(Context& ctx, const std::string& user) { return user.empty() ? ctx.me() : user; }

void print_done(Context& ctx, const nlohmann::json& for_json, const std::string& message) {
  if (ctx.json_output())
    print_json(for_json);
  else
    std::cout << message << std::endl;
}

// --- acl ---------------------------------------------------------------------

int grant(Context& ctx, const std::string& uri, const std::string& principal, const std::string& action) {
  auto body = nlohmann::json::array({nlohmann::json{{"uri", uri}, {"action", action}}});
  auto answer = ctx.send_json("POST", permissions_path(principal), body);
  print_done(ctx, answer, "Granted " + action + " on " + uri + " to " + principal + ".");
  return code(Exit::ok);
}

int revoke(Context& ctx, const std::string& uri, const std::string& principal) {
  ctx.send_json("DELETE", with_query(permissions_path(principal), {{"uri", uri}}));
  print_done(ctx, {{"uri", uri}, {"principal", principal}, {"revoked", true}},
             "Revoked " + principal + "'s grant on " + uri + ".");
  return code(Exit::ok);
}

struct AclLsArgs {
  std::string prefix;
  bool shared = false;
  std::string user;
  bool expand_roles = false;
};

int run_acl_ls(Context& ctx, const AclLsArgs& a) {
  auto who = subject(ctx, a.user);
  if (a.shared) {
    auto list = ctx.get_json(with_query(permissions_path(who) + "/shared", {{"uri", opt(a.prefix)}}));
    if (ctx.json_output()) {
      print_json(list);
      return code(Exit::ok);
    }
    Table t({{"URI"}, {"USER"}, {"ACTION"}});
    if (list.is_array())
      for (const auto& g : list) t.add_row({cell(g, "uri"), cell(g, "user"), cell(g, "action")});
    std::cout << t.render(false) << std::flush;
    return code(Exit::ok);
  }
  auto list = ctx.get_json(with_query(
      permissions_path(who), {{"uri", opt(a.prefix)}, {"expand_roles", a.expand_roles ? opt("true") : std::nullopt}}));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"URI"}, {"ACTION"}, {"VIA"}});
  if (list.is_array())
    for (const auto& g : list) t.add_row({cell(g, "uri"), cell(g, "action"), cell(g, "via")});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_acl_tree(Context& ctx, const std::string& uri, int depth, const std::string& user) {
  auto who = subject(ctx, user);
  auto tree =
      ctx.get_json(with_query(permissions_path(who) + "/tree",
                              {{"uri", opt(uri)}, {"depth", depth > 0 ? opt(std::to_string(depth)) : std::nullopt}}));
  if (ctx.json_output())
    print_json(tree);
  else
    std::cout << render_permission_tree(tree) << std::flush;
  return code(Exit::ok);
}

// --- role --------------------------------------------------------------------

// Role names have a '/'; a bare one is the caller's: "readers" is "alice/roles/readers".
std::string role_name(Context& ctx, const std::string& name) {
  return name.find('/') == std::string::npos ? ctx.me() + "/roles/" + name : name;
}

int run_role_create(Context& ctx, const std::string& short_name) {
  auto name = role_name(ctx, short_name);
  auto answer = ctx.send_json("POST", api("/roles"), nlohmann::json{{"name", name}});
  print_done(ctx, answer.is_null() ? nlohmann::json{{"name", name}} : answer,
             "Created role " + name + ". Give it grants with `neuro acl grant URI " + name +
                 " ACTION` and holders with `neuro role grant " + name + " USER`.");
  return code(Exit::ok);
}

int run_role_ls(Context& ctx) {
  auto list = ctx.get_json(api("/roles"));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"NAME"}, {"HOLDS"}, {"MANAGES"}, {"BUILTIN"}});
  if (list.is_array())
    for (const auto& r : list) t.add_row({cell(r, "name"), cell(r, "holds"), cell(r, "manages"), cell(r, "builtin")});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_role_rm(Context& ctx, const std::string& short_name) {
  auto name = role_name(ctx, short_name);
  ctx.send_json("DELETE", api("/roles/" + principal_segment(name)));
  print_done(ctx, {{"name", name}, {"removed", true}}, "Removed role " + name + ".");
  return code(Exit::ok);
}

// --- project -----------------------------------------------------------------

std::string project_path(const std::string& name) { return api("/projects/" + path_segment(name)); }

int run_project_create(Context& ctx, const std::string& name) {
  auto answer = ctx.send_json("POST", api("/projects"), nlohmann::json{{"name", name}});
  print_done(ctx, answer, "Created project " + name + "; you are its admin.");
  return code(Exit::ok);
}

int run_project_ls(Context& ctx, bool all) {
  auto list = ctx.get_json(with_query(api("/projects"), {{"all", all ? opt("true") : std::nullopt}}));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"NAME"}, {"ROLE"}, {"PERSONAL"}, {"CREATED"}});
  if (list.is_array())
    for (const auto& p : list)
      t.add_row({cell(p, "name"), cell(p, "role"), cell(p, "personal"), show_time(field(p, "created_at"))});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_project_rm(Context& ctx, const std::string& name, bool yes) {
  confirm("Delete project " + name + " and everything in it?", yes);
  ctx.send_json("DELETE", project_path(name));
  print_done(ctx, {{"name", name}, {"removed", true}}, "Deleted project " + name + ".");
  return code(Exit::ok);
}

int run_project_members(Context& ctx, const std::string& name) {
  auto list = ctx.get_json(project_path(name) + "/members");
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"USER"}, {"ROLE"}});
  if (list.is_array())
    for (const auto& m : list) t.add_row({cell(m, "user"), cell(m, "role")});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_project_add_member(Context& ctx, const std::string& name, const std::string& user, const std::string& role) {
  auto answer =
      ctx.send_json("PUT", project_path(name) + "/members/" + principal_segment(user), nlohmann::json{{"role", role}});
  print_done(ctx, answer.is_null() ? nlohmann::json{{"user", user}, {"role", role}} : answer,
             user + " is now " + role + " of project " + name + ".");
  return code(Exit::ok);
}

int run_project_rm_member(Context& ctx, const std::string& name, const std::string& user) {
  ctx.send_json("DELETE", project_path(name) + "/members/" + principal_segment(user));
  print_done(ctx, {{"project", name}, {"user", user}, {"removed", true}},
             "Removed " + user + " from project " + name + ".");
  return code(Exit::ok);
}

void register_acl(CLI::App& app, Context& ctx) {
  auto* acl = app.add_subcommand("acl", "Grant, revoke and list permissions on resources");
  acl->require_subcommand(1);

  auto* g = acl->add_subcommand("grant", "Grant a user, service account or role an action on a URI and below");
  auto g_uri = std::make_shared<std::string>();
  auto g_who = std::make_shared<std::string>();
  auto g_action = std::make_shared<std::string>();
  g->add_option("URI", *g_uri, "e.g. storage:data, job://default/alice/job-1, role://alice/roles/readers")->required();
  g->add_option("PRINCIPAL", *g_who, "User, service account (alice/service-accounts/ci) or role")->required();
  g->add_option("ACTION", *g_action, "read, write, manage, list or deny")
      ->required()
      ->check(CLI::IsMember({"read", "write", "manage", "deny", "list"}));
  on_run(g, ctx, [&ctx, g_uri, g_who, g_action] { return grant(ctx, *g_uri, *g_who, *g_action); });

  auto* r = acl->add_subcommand("revoke", "Remove a principal's grant on exactly this URI");
  auto r_uri = std::make_shared<std::string>();
  auto r_who = std::make_shared<std::string>();
  r->add_option("URI", *r_uri, "The URI of the grant")->required();
  r->add_option("PRINCIPAL", *r_who, "User, service account or role")->required();
  on_run(r, ctx, [&ctx, r_uri, r_who] { return revoke(ctx, *r_uri, *r_who); });

  auto* ls = acl->add_subcommand("ls", "List grants held (or, with --shared, given to others)");
  auto ls_args = std::make_shared<AclLsArgs>();
  ls->add_option("URI", ls_args->prefix, "Only grants under this URI");
  auto* shared = ls->add_flag("--shared", ls_args->shared, "Grants others hold on what you manage");
  ls->add_option("-u,--user", ls_args->user, "Another principal's (yourself by default)")->type_name("USER");
  ls->add_flag("--expand-roles", ls_args->expand_roles, "Include what roles held give, with VIA naming the role")
      ->excludes(shared);
  on_run(ls, ctx, [&ctx, ls_args] { return run_acl_ls(ctx, *ls_args); });

  auto* tree = acl->add_subcommand("tree", "Show effective permissions as a tree");
  auto t_uri = std::make_shared<std::string>();
  auto t_depth = std::make_shared<int>(0);
  auto t_user = std::make_shared<std::string>();
  tree->add_option("URI", *t_uri, "The root of the tree (default: the server's)");
  tree->add_option("--depth", *t_depth, "Levels below the root")->type_name("N")->check(CLI::PositiveNumber);
  tree->add_option("-u,--user", *t_user, "Another principal's (yourself by default)")->type_name("USER");
  on_run(tree, ctx, [&ctx, t_uri, t_depth, t_user] { return run_acl_tree(ctx, *t_uri, *t_depth, *t_user); });
}

void register_role(CLI::App& app, Context& ctx) {
  auto* role = app.add_subcommand("role", "Create, list, remove, grant and revoke roles");
  role->require_subcommand(1);
  constexpr const char* kRoleHelp = "Role name; a bare NAME means YOU/roles/NAME";

  auto* create = role->add_subcommand("create", "Create a role; you get manage on it");
  auto c_name = std::make_shared<std::string>();
  create->add_option("NAME", *c_name, kRoleHelp)->required();
  on_run(create, ctx, [&ctx, c_name] { return run_role_create(ctx, *c_name); });

  auto* ls = role->add_subcommand("ls", "List the roles you hold or manage");
  on_run(ls, ctx, [&ctx] { return run_role_ls(ctx); });

  auto* rm = role->add_subcommand("rm", "Remove a role");
  auto rm_name = std::make_shared<std::string>();
  rm->add_option("NAME", *rm_name, kRoleHelp)->required();
  on_run(rm, ctx, [&ctx, rm_name] { return run_role_rm(ctx, *rm_name); });

  auto* g = role->add_subcommand("grant", "Give USER the role (= neuro acl grant role://ROLE USER read)");
  auto g_role = std::make_shared<std::string>();
  auto g_user = std::make_shared<std::string>();
  g->add_option("ROLE", *g_role, kRoleHelp)->required();
  g->add_option("USER", *g_user, "User, service account or role")->required();
  on_run(g, ctx, [&ctx, g_role, g_user] { return grant(ctx, "role://" + role_name(ctx, *g_role), *g_user, "read"); });

  auto* r = role->add_subcommand("revoke", "Take the role from USER (= neuro acl revoke role://ROLE USER)");
  auto r_role = std::make_shared<std::string>();
  auto r_user = std::make_shared<std::string>();
  r->add_option("ROLE", *r_role, kRoleHelp)->required();
  r->add_option("USER", *r_user, "User, service account or role")->required();
  on_run(r, ctx, [&ctx, r_role, r_user] { return revoke(ctx, "role://" + role_name(ctx, *r_role), *r_user); });
}

void register_project(CLI::App& app, Context& ctx) {
  auto* project = app.add_subcommand("project", "Create, list and remove projects and manage their members");
  project->require_subcommand(1);

  auto* create = project->add_subcommand("create", "Create a project; you become its admin");
  auto c_name = std::make_shared<std::string>();
  create->add_option("NAME", *c_name, "Lower-case letters, digits, '-' and '_'")->required();
  on_run(create, ctx, [&ctx, c_name] { return run_project_create(ctx, *c_name); });

  auto* ls = project->add_subcommand("ls", "List your projects with your role in each");
  auto all = std::make_shared<bool>(false);
  ls->add_flag("--all", *all, "Every project (admins only)");
  on_run(ls, ctx, [&ctx, all] { return run_project_ls(ctx, *all); });

  auto* rm = project->add_subcommand("rm", "Delete a project and its resources");
  auto rm_name = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  rm->add_option("NAME", *rm_name, "The project")->required();
  rm->add_flag("-y,--yes", *yes, "Do not ask for confirmation");
  on_run(rm, ctx, [&ctx, rm_name, yes] { return run_project_rm(ctx, *rm_name, *yes); });

  auto* members = project->add_subcommand("members", "List a project's members and their roles");
  auto m_name = std::make_shared<std::string>();
  members->add_option("NAME", *m_name, "The project")->required();
  on_run(members, ctx, [&ctx, m_name] { return run_project_members(ctx, *m_name); });

  auto* add = project->add_subcommand("add-member", "Add a member, or change a member's role");
  auto a_name = std::make_shared<std::string>();
  auto a_user = std::make_shared<std::string>();
  auto a_role = std::make_shared<std::string>("writer");
  add->add_option("NAME", *a_name, "The project")->required();
  add->add_option("USER", *a_user, "User or service account")->required();
  add->add_option("--role", *a_role, "The member's role")
      ->check(CLI::IsMember({"reader", "writer", "manager", "admin"}))
      ->capture_default_str();
  on_run(add, ctx, [&ctx, a_name, a_user, a_role] { return run_project_add_member(ctx, *a_name, *a_user, *a_role); });

  auto* rm_member = project->add_subcommand("rm-member", "Remove a member from a project");
  auto rmm_name = std::make_shared<std::string>();
  auto rmm_user = std::make_shared<std::string>();
  rm_member->add_option("NAME", *rmm_name, "The project")->required();
  rm_member->add_option("USER", *rmm_user, "The member")->required();
  on_run(rm_member, ctx, [&ctx, rmm_name, rmm_user] { return run_project_rm_member(ctx, *rmm_name, *rmm_user); });
}

}  // namespace

void register_acl_commands(CLI::App& app, Context& ctx) {
  register_acl(app, ctx);
  register_role(app, ctx);
  register_project(app, ctx);
}

}  // namespace neurod::cli
