// `neurod admin …`: user and token management straight against the database, for the
// first steps and for recovery (a lost admin token, a forgotten password). It runs as
// the system actor; whoever can read the config and the database is already root here.
#include "modules/auth/module.hpp"

#include "app/offline_cli.hpp"
#include "db/database.hpp"


#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace neurod::auth {

namespace {

std::string read_password(bool from_stdin) {
  std::string pw;
  if (from_stdin || !::isatty(STDIN_FILENO)) {
    std::getline(std::cin, pw);
    return pw;
  }
  termios old{};
  ::tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::cerr << "Password: " << std::flush;
  std::getline(std::cin, pw);
  std::string again;
  std::cerr << "\nAgain: " << std::flush;
  std::getline(std::cin, again);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  std::cerr << "\n";
  if (pw != again) throw Error(errc::invalid_argument, "the passwords do not match");
  return pw;
}

std::string format_time(std::int64_t ms) {
  if (!ms) return "never";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int admin_command(const std::vector<std::string>& args, app::OfflineContext& ctx) {
  CLI::App cli{"Manage users and tokens directly in the database (for setup and recovery)", "neurod admin"};
  cli.require_subcommand(1);
  auto* user = cli.add_subcommand("user", "Users")->require_subcommand(1);
  std::string name, email, expires = "30d", token_name = "neurod admin";
  bool admin = false, password_stdin = false, with_password = false;
  auto* add = user->add_subcommand("add", "Create a user (with a personal project)");
  add->add_option("name", name, "User name")->required();
  add->add_option("--email", email, "Email address");
  add->add_flag("--admin", admin, "Make the user a cluster administrator");
  add->add_flag("--password", with_password, "Ask for a password (otherwise the user logs in with tokens only)");
  add->add_flag("--password-stdin", password_stdin, "Read the password from the first line of stdin");
  auto* ls = user->add_subcommand("ls", "List users");
  auto* rm = user->add_subcommand("rm", "Delete a user with their tokens, grants and personal project");
  rm->add_option("name", name, "User name")->required();
  auto* setpw = user->add_subcommand("set-password", "Set a user's password (asked for, or --password-stdin)");
  setpw->add_option("name", name, "User name")->required();
  setpw->add_flag("--password-stdin", password_stdin, "Read the password from the first line of stdin");
  auto* token = cli.add_subcommand("token", "Tokens")->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Mint a token for a user and print it");
  create->add_option("name", name, "User name")->required();
  create->add_option("--expires-in", expires, "Lifetime (default 30d)");
  create->add_option("--name", token_name, "A label for the token");

  if (auto rc = app::parse_offline_args(cli, args)) return *rc;

  const auto config = app::offline_config<Config>(ctx);
  Authorizer authz(ctx.global().cluster_name);
  Service svc(ctx.db(), authz, service_options(config, ctx.global().cluster_name));
  svc.load();
  auto system = Actor::daemon();

  if (*add) {
    std::string pw;
    if (with_password || password_stdin) pw = read_password(password_stdin);
    svc.create_user(system, name, pw, email, admin);
    std::cout << "created user '" << name << "'" << (admin ? " (administrator)" : "")
              << (pw.empty() ? "; it has no password: mint a token with `neurod admin token create " + name + "`" : "")
              << "\n";
  } else if (*ls) {
    for (const auto& p : svc.list_principals(system, "user")) {
      http::Principal who{p.name, "user", {}};
      std::cout << p.name << (authz.is_admin(who) ? "  admin" : "") << (p.email.empty() ? "" : "  " + p.email) << "\n";
    }
  } else if (*rm) {
    svc.delete_user(system, name);
    std::cout << "deleted user '" << name << "'\n";
  } else if (*setpw) {
    svc.set_password(system, name, read_password(password_stdin), std::nullopt);
    std::cout << "password set for '" << name << "'; their login sessions were ended\n";
  } else if (*create) {
    auto d = parse_duration(expires);
    if (!d) throw Error(errc::invalid_argument, "--expires-in: not a duration: " + expires);
    auto issued = svc.create_token(system, name, "api", token_name, *d);
    std::cerr << "token " << issued.info.id << " for '" << name << "', expires "
              << format_time(issued.info.expires_at.value_or(0)) << ":\n";
    std::cout << issued.token << "\n";
  }
  return 0;
}

}  // namespace

std::vector<app::OfflineCommand> Module::offline_commands() {
  return {{"admin", "Manage users and tokens in the database, offline (setup and recovery)", admin_command}};
}

}  // namespace neurod::auth
