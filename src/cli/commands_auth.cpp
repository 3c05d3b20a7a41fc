// neuro login, logout, whoami, token …, service-account …, quota
// (modules/auth/README.md: Session, Tokens and service accounts, Quotas).
#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"
#include "cli/commands.hpp"
#include "cli/prompt.hpp"
#include "cli/table.hpp"

#include <fmt/format.h>

#include <iostream>

namespace neurod::cli {

namespace {

std::string trimmed(std::string s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && space(s[start])) ++start;
  return s.substr(start);
}

std::string expiry_text(const nlohmann::json& expires_at) {
  return expires_at.is_null() ? "does not expire" : "expires " + show_time(expires_at);
}

// A token is printed once: alone on stdout (so that `$(neuro token create)` takes
// it), with what it is and the warning on stderr.
void print_new_token(Context& ctx, const nlohmann::json& answer, const std::string& what,
                     const std::string& hint = {}) {
  if (ctx.json_output()) {
    print_json(answer);
    return;
  }
  auto token = cell(answer, "token");
  if (token.empty()) throw CliError(Exit::server, "the server's answer has no token");
  std::cerr << what << "\nThis is the only time the token is shown: store it now." << std::endl;
  if (!hint.empty()) std::cerr << hint << std::endl;
  std::cout << token << std::endl;
}

void note_env_token(Context& ctx, std::string_view what) {
  if (ctx.env()("NEURO_TOKEN")) std::cerr << "neuro: note: NEURO_TOKEN is set " << what << std::endl;
}

// --- login -------------------------------------------------------------------

struct LoginArgs {
  std::string url;
  std::string user;
  bool password_stdin = false;
  std::string token;
  bool token_given = false;  // --token, even if empty
  bool token_stdin = false;
};

std::string login_url(Context& ctx, std::string url) {
  if (url.empty()) {
    const auto& s = ctx.settings();
    if (s.url_source == Source::default_value)
      throw CliError(Exit::usage,
                     "no server URL is set: give it (`neuro login https://neuro.example.com`), or set it with "
                     "`neuro config set-url URL`, NEURO_URL or --url");
    url = s.url;
  }
  if (auto scheme_end = url.find("://"); scheme_end != std::string::npos)
    while (url.size() > scheme_end + 3 && url.back() == '/') url.pop_back();
  try {
    http::Url::parse(url);
  } catch (const Error& e) {
    throw CliError(Exit::usage, e.what());
  }
  return url;
}

// POST /auth/login with the user's name and password; returns {user, token, expires_at}.
nlohmann::json password_login(Context& ctx, const LoginArgs& a) {
  auto user = a.user.empty() ? prompt_line("Username: ", "Give the user name with -u NAME.") : a.user;
  if (user.empty()) throw CliError(Exit::usage, "the user name must not be empty");
  auto password = a.password_stdin ? read_stdin_secret("--password-stdin")
                                   : prompt_secret("Password: ", "Pass the password on stdin with --password-stdin.");
  ctx.use_token("");  // a stale stored token must not get in the way of logging in
  nlohmann::json body{{"user", user}, {"password", password}};
  auto r = ctx.call("POST", api("/auth/login"), body.dump(), {{"Content-Type", "application/json"}});
  if (r.status == 401) throw CliError(Exit::auth, "login failed: " + describe_error(r.status, r.body));
  if (r.status == 429) {
    auto text = "login failed: " + describe_error(r.status, r.body);
    if (auto after = r.header("Retry-After")) text += "\nTry again in " + *after + " seconds.";
    throw CliError(Exit::server, text);
  }
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  auto answer = r.json();
  if (cell(answer, "token").empty()) throw CliError(Exit::server, "the server's login answer has no token");
  if (name_of(field(answer, "user")).empty()) answer["user"] = user;
  return answer;
}

// Checks a given token with GET /auth/whoami; returns {user, token, expires_at}.
nlohmann::json token_login(Context& ctx, const LoginArgs& a) {
  auto token = trimmed(a.token_stdin ? read_stdin_secret("--token-stdin") : a.token);
  if (token.empty()) throw CliError(Exit::usage, "the token must not be empty");
  ctx.use_token(token);
  auto r = ctx.call("GET", api("/auth/whoami"));
  if (r.status == 401 || r.status == 403)
    throw CliError(Exit::auth, "the server did not accept the token: " + describe_error(r.status, r.body));
  if (r.status < 200 || r.status >= 300) throw server_error(r.status, r.body);
  auto who = r.json();
  if (name_of(who).empty()) throw CliError(Exit::server, "the server's answer to GET /api/v1/auth/whoami has no name");
  return {{"user", name_of(who)}, {"token", token}, {"expires_at", field(field(who, "token"), "expires_at")}};
}

int run_login(Context& ctx, const LoginArgs& a) {
  auto url = login_url(ctx, a.url);
  ctx.use_url(url);
  bool with_token = a.token_given || a.token_stdin;
  auto answer = with_token ? token_login(ctx, a) : password_login(ctx, a);
  auto user = name_of(answer["user"]);

  auto config = ctx.user_config();
  config.url = url;
  config.token = answer["token"].get<std::string>();
  save_user_config(ctx.config_path(), config);

  if (ctx.json_output()) {
    print_json({{"url", url},
                {"user", user},
                {"expires_at", field(answer, "expires_at")},
                {"config_file", ctx.config_path().string()}});
  } else {
    std::cout << "Logged in to " << url << " as " << user << " (token " << expiry_text(field(answer, "expires_at"))
              << ")." << std::endl;
  }
  note_env_token(ctx, "and takes precedence over the token in the config file");
  if (auto env = ctx.env()("NEURO_URL"); env && *env != url)
    std::cerr << "neuro: note: NEURO_URL=" << *env << " is set and takes precedence over the config file" << std::endl;
  return code(Exit::ok);
}

// --- logout ------------------------------------------------------------------

int run_logout(Context& ctx) {
  auto config = ctx.user_config();
  const auto path = ctx.config_path().string();
  if (config.token.empty()) {
    if (ctx.json_output())
      print_json({{"revoked", false}, {"removed", false}, {"config_file", path}});
    else
      std::cout << "Not logged in: there is no token in " << path << "." << std::endl;
    note_env_token(ctx, "and is not affected: unset it to stop using that token");
    return code(Exit::ok);
  }

  // Revoke the stored token, whatever NEURO_TOKEN says.
  ctx.use_token(config.token);
  const auto url = ctx.settings().url;
  bool revoked = false;
  std::optional<CliError> unreachable;
  std::string why_not;
  const std::string invalid = "the server no longer accepted it (it had expired or been revoked)";
  try {
    // POST /auth/logout ends sessions only: a token stored by `login --token` (api,
    // service, bootstrap) stays valid, so ask first what kind this one is.
    auto who = ctx.call("GET", api("/auth/whoami"));
    if (who.status == 401) {
      why_not = invalid;
    } else if (who.status < 200 || who.status >= 300) {
      throw server_error(who.status, who.body);  // the token is kept, so that logging out can be retried
    } else {
      auto answer = nlohmann::json::parse(who.body, nullptr, false);
      const auto& token = field(answer, "token");
      auto kind = cell(token, "kind");
      auto r = ctx.call("POST", api("/auth/logout"));
      if (r.status == 401)
        why_not = invalid;
      else if (r.status < 200 || r.status >= 300)
        throw server_error(r.status, r.body);
      else if (kind.empty() || kind == "session")
        revoked = true;
      else
        why_not = "it is " + std::string(kind == "api" ? "an " : "a ") + kind +
                  " token, which logging out does not revoke: revoke it with `neuro token revoke " + cell(token, "id") +
                  "`";
    }
  } catch (const Error& e) {
    auto err = from_error(e);
    if (err.exit() != Exit::unreachable) throw err;
    why_not = "the server could not be reached; the token stays valid until it expires";
    unreachable = CliError(Exit::unreachable, std::string(e.what()) +
                                                  "\nThe token was not revoked. Revoke it later from another session "
                                                  "with `neuro token ls` and `neuro token revoke ID`.");
  }

  config.token.clear();
  save_user_config(ctx.config_path(), config);

  if (ctx.json_output()) {
    nlohmann::json out{{"url", url}, {"revoked", revoked}, {"removed", true}, {"config_file", path}};
    if (!why_not.empty()) out["warning"] = why_not;
    print_json(out);
  } else if (revoked) {
    std::cout << "Logged out of " << url << ": the token was revoked and removed from " << path << "." << std::endl;
  } else {
    std::cout << "Removed the token from " << path << " without revoking it: " << why_not << "." << std::endl;
  }
  note_env_token(ctx, "and is not affected: unset it to stop using that token");
  if (unreachable) throw *unreachable;
  return code(Exit::ok);
}

// --- whoami ------------------------------------------------------------------

int run_whoami(Context& ctx) {
  const auto& who = ctx.whoami();
  if (ctx.json_output()) {
    print_json(who);
    return code(Exit::ok);
  }
  std::string projects;
  if (const auto& list = field(who, "projects"); list.is_array())
    for (const auto& p : list) {
      if (!projects.empty()) projects += ", ";
      projects += name_of(p);
      if (auto role = cell(p, "role"); !role.empty()) projects += " (" + role + ")";
    }
  std::string roles;
  if (const auto& list = field(who, "roles"); list.is_array())
    for (const auto& r : list) roles += (roles.empty() ? "" : ", ") + name_of(r);
  std::string token;
  if (const auto& t = field(who, "token"); t.is_object()) {
    token = cell(t, "kind").empty() ? "token" : cell(t, "kind") + " token";
    if (auto id = cell(t, "id"); !id.empty()) token += " " + id;
    if (auto name = cell(t, "name"); !name.empty()) token += " \"" + name + "\"";
    token += ", " + expiry_text(field(t, "expires_at"));
  }
  Table t({{""}, {""}});
  t.add_row({"User:", cell(who, "name")});
  t.add_row({"Kind:", cell(who, "kind")});
  t.add_row({"Admin:", cell(who, "admin").empty() ? "no" : cell(who, "admin")});
  t.add_row({"Cluster:", cell(who, "cluster")});
  t.add_row({"Projects:", projects.empty() ? "-" : projects});
  t.add_row({"Roles:", roles.empty() ? "-" : roles});
  if (!token.empty()) t.add_row({"Token:", token});
  auto text = t.render(false);
  std::cout << text.substr(text.find('\n') + 1) << std::flush;  // without the empty header line
  return code(Exit::ok);
}

// --- token -------------------------------------------------------------------

std::string default_token_name() {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto iso = format_iso(SysTime(now.time_since_epoch()));  // 2024-05-01T12:30:00Z
  std::string name = "neuro-";
  for (char c : iso)
    if (c >= '0' && c <= '9') name += c;
  return name.insert(14, "-");  // neuro-20240501-123000
}

int run_token_create(Context& ctx, const std::string& name, const std::string& expires_in) {
  nlohmann::json body{{"name", name.empty() ? default_token_name() : name}};
  if (!expires_in.empty()) body["expires_in"] = duration_arg("--expires-in", expires_in);
  auto answer = ctx.send_json("POST", api("/tokens"), body);
  print_new_token(ctx, answer,
                  fmt::format("Created token {} \"{}\" ({}).", cell(answer, "id"), cell(answer, "name"),
                              expiry_text(field(answer, "expires_at"))));
  return code(Exit::ok);
}

int run_token_ls(Context& ctx, const std::string& user) {
  auto list = ctx.get_json(with_query(api("/tokens"), {{"user", user.empty() ? std::nullopt : std::optional(user)}}));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"ID"}, {"NAME"}, {"KIND"}, {"CREATED"}, {"EXPIRES"}});
  if (list.is_array())
    for (const auto& tok : list)
      t.add_row({cell(tok, "id"), cell(tok, "name"), cell(tok, "kind"), show_time(field(tok, "created_at")),
                 show_time(field(tok, "expires_at"), "never")});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_token_revoke(Context& ctx, const std::string& id) {
  ctx.send_json("DELETE", api("/tokens/" + path_segment(id)));
  if (ctx.json_output())
    print_json({{"id", id}, {"revoked", true}});
  else
    std::cout << "Revoked token " << id << "." << std::endl;
  return code(Exit::ok);
}

// --- service-account ---------------------------------------------------------

int run_sa_create(Context& ctx, const std::string& name, const std::string& expires_in) {
  nlohmann::json body{{"name", name}};
  if (!expires_in.empty()) body["expires_in"] = duration_arg("--expires-in", expires_in);
  auto answer = ctx.send_json("POST", api("/service-accounts"), body);
  auto full = cell(answer, "name").empty() ? name : cell(answer, "name");
  print_new_token(ctx, answer,
                  fmt::format("Created service account {} with token {} ({}).", full, cell(answer, "token_id"),
                              expiry_text(field(answer, "expires_at"))),
                  "Give it access with `neuro acl grant URI " + full + " ACTION`.");
  return code(Exit::ok);
}

int run_sa_ls(Context& ctx) {
  auto list = ctx.get_json(api("/service-accounts"));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"NAME"}, {"OWNER"}, {"CREATED"}});
  if (list.is_array())
    for (const auto& sa : list) t.add_row({cell(sa, "name"), cell(sa, "owner"), show_time(field(sa, "created_at"))});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_sa_rm(Context& ctx, const std::string& name) {
  ctx.send_json("DELETE", api("/service-accounts/" + principal_segment(name)));
  if (ctx.json_output())
    print_json({{"name", name}, {"removed", true}});
  else
    std::cout << "Removed service account " << name << " with its tokens and grants." << std::endl;
  return code(Exit::ok);
}

// --- quota -------------------------------------------------------------------

int run_quota(Context& ctx, const std::string& user, const std::string& project) {
  auto opt = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); };
  auto answer = ctx.get_json(with_query(api("/quota"), {{"user", opt(user)}, {"project", opt(project)}}));
  if (ctx.json_output()) {
    print_json(answer);
    return code(Exit::ok);
  }
  std::vector<std::string> sections;
  if (const auto& u = field(answer, "user"); u.is_object()) sections.push_back(render_quota("user", u));
  if (const auto& ps = field(answer, "projects"); ps.is_array())
    for (const auto& p : ps) sections.push_back(render_quota("project", p));
  if (const auto& p = field(answer, "project"); p.is_object()) sections.push_back(render_quota("project", p));
  if (sections.empty()) {
    std::cout << "No quotas to show." << std::endl;
    return code(Exit::ok);
  }
  for (std::size_t i = 0; i < sections.size(); ++i) std::cout << (i > 0 ? "\n" : "") << sections[i];
  std::cout.flush();
  return code(Exit::ok);
}

}  // namespace

void register_auth_commands(CLI::App& app, Context& ctx) {
  // login
  auto* login = app.add_subcommand("login", "Log in and store the server URL and a token in the config file");
  auto la = std::make_shared<LoginArgs>();
  login->add_option("URL", la->url, "Server URL (default: the configured one)");
  auto* user = login->add_option("-u,--user", la->user, "User name (asked when missing)")->type_name("NAME");
  auto* pw_stdin = login->add_flag("--password-stdin", la->password_stdin, "Read the password from stdin");
  auto* tok = login
                  ->add_option("--token", la->token,
                               "Log in with this token instead of a password (prefer "
                               "--token-stdin: arguments are visible to other users)")
                  ->type_name("TOKEN");
  auto* tok_stdin = login->add_flag("--token-stdin", la->token_stdin, "Read the token from stdin");
  tok->excludes(user)->excludes(pw_stdin)->excludes(tok_stdin);
  tok_stdin->excludes(user)->excludes(pw_stdin);
  on_run(login, ctx, [&ctx, la, tok] {
    la->token_given = tok->count() > 0;
    return run_login(ctx, *la);
  });

  auto* logout = app.add_subcommand("logout", "Revoke the stored token and remove it from the config file");
  on_run(logout, ctx, [&ctx] { return run_logout(ctx); });

  auto* whoami = app.add_subcommand("whoami", "Show who the token belongs to: projects, roles, expiry");
  on_run(whoami, ctx, [&ctx] { return run_whoami(ctx); });

  // token
  auto* token = app.add_subcommand("token", "Create, list and revoke API tokens");
  token->require_subcommand(1);
  {
    auto* create = token->add_subcommand("create", "Create an API token and print it (once)");
    auto name = std::make_shared<std::string>();
    auto expires = std::make_shared<std::string>();
    create->add_option("--name", *name, "A name to recognise it by (default: neuro-DATE-TIME)")->type_name("NAME");
    create->add_option("--expires-in", *expires, "Life time, e.g. 90d (default: the server's)")->type_name("DURATION");
    on_run(create, ctx, [&ctx, name, expires] { return run_token_create(ctx, *name, *expires); });

    auto* ls = token->add_subcommand("ls", "List your tokens (admins: anyone's with -u)");
    auto ls_user = std::make_shared<std::string>();
    ls->add_option("-u,--user", *ls_user, "Whose tokens (admins only)")->type_name("USER");
    on_run(ls, ctx, [&ctx, ls_user] { return run_token_ls(ctx, *ls_user); });

    auto* revoke = token->add_subcommand("revoke", "Revoke a token by its id");
    auto id = std::make_shared<std::string>();
    revoke->add_option("ID", *id, "The token's id (see `neuro token ls`)")->required();
    on_run(revoke, ctx, [&ctx, id] { return run_token_revoke(ctx, *id); });
  }

  // service-account
  auto* sa = app.add_subcommand("service-account", "Create, list and remove service accounts");
  sa->require_subcommand(1);
  {
    auto* create = sa->add_subcommand("create", "Create a service account and print its token (once)");
    auto name = std::make_shared<std::string>();
    auto expires = std::make_shared<std::string>();
    create->add_option("NAME", *name, "Short name; the account becomes YOU/service-accounts/NAME")->required();
    create->add_option("--expires-in", *expires, "The token's life time, e.g. 365d")->type_name("DURATION");
    on_run(create, ctx, [&ctx, name, expires] { return run_sa_create(ctx, *name, *expires); });

    auto* ls = sa->add_subcommand("ls", "List your service accounts (admins: all)");
    on_run(ls, ctx, [&ctx] { return run_sa_ls(ctx); });

    auto* rm = sa->add_subcommand("rm", "Remove a service account with its tokens and grants");
    auto rm_name = std::make_shared<std::string>();
    rm->add_option("NAME", *rm_name, "Short name, or the full name")->required();
    on_run(rm, ctx, [&ctx, rm_name] { return run_sa_rm(ctx, *rm_name); });
  }

  // quota
  auto* quota = app.add_subcommand("quota", "Show quota limits and usage for you and your projects");
  auto q_user = std::make_shared<std::string>();
  auto q_project = std::make_shared<std::string>();
  auto* qu = quota->add_option("-u,--user", *q_user, "Another user's (admins only)")->type_name("USER");
  quota->add_option("-p,--project", *q_project, "One project's (members)")->type_name("PROJECT")->excludes(qu);
  on_run(quota, ctx, [&ctx, q_user, q_project] { return run_quota(ctx, *q_user, *q_project); });
}

}  // namespace neurod::cli
