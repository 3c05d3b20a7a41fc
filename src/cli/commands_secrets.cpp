// neuro secret add|ls|get|rm (modules/secrets/README.md: Endpoints). Values travel
// base64-encoded; `get` writes the raw bytes to stdout.
#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"
#include "cli/commands.hpp"
#include "cli/table.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace neurod::cli {

namespace {

using nlohmann::json;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                 static_cast<unsigned char>(in[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], kAlphabet[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) throw CliError(Exit::server, "the server sent a value that is not base64");
    buf = (buf << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

// VALUE as given, @FILE the file's bytes, @- stdin's (keeps the value out of `ps`).
std::string value_arg(const std::string& arg) {
  if (arg.empty() || arg[0] != '@') return arg;
  auto path = arg.substr(1);
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError(Exit::usage, fmt::format("VALUE: cannot read {}: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> opt(const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); }

std::string secret_path(const std::string& key, const std::string& project) {
  return with_query(api("/secrets/" + path_segment(key)), {{"project_name", opt(project)}});
}

int run_add(Context& ctx, const std::string& key, const std::string& value, const std::string& project) {
  json body{{"key", key}, {"value", base64_encode(value_arg(value))}};
  if (!project.empty()) body["project_name"] = project;
  auto answer = ctx.send_json("POST", api("/secrets"), body);
  if (ctx.json_output())
    print_json(answer);
  else
    std::cout << "Saved secret " << cell(answer, "key") << " in project " << cell(answer, "project_name")
              << " (use it in a job as secret:" << cell(answer, "key") << ")." << std::endl;
  return code(Exit::ok);
}

int run_ls(Context& ctx, const std::string& project) {
  auto list = ctx.get_json(with_query(api("/secrets"), {{"project_name", opt(project)}}));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"KEY"}, {"PROJECT"}, {"OWNER"}, {"UPDATED"}});
  if (list.is_array())
    for (const auto& s : list)
      t.add_row({cell(s, "key"), cell(s, "project_name"), cell(s, "owner"), show_time(field(s, "updated_at"))});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_get(Context& ctx, const std::string& key, const std::string& project) {
  auto answer = ctx.get_json(secret_path(key, project));
  if (ctx.json_output()) {
    print_json(answer);
    return code(Exit::ok);
  }
  auto value = base64_decode(answer.is_object() ? answer.value("value", "") : "");
  std::cout.write(value.data(), static_cast<std::streamsize>(value.size()));
  std::cout.flush();
  return code(Exit::ok);
}

int run_rm(Context& ctx, const std::string& key, const std::string& project) {
  ctx.send_json("DELETE", secret_path(key, project));
  if (ctx.json_output())
    print_json({{"key", key}, {"project_name", project.empty() ? json(nullptr) : json(project)}, {"removed", true}});
  else
    std::cout << "Deleted secret " << key << "." << std::endl;
  return code(Exit::ok);
}

}  // namespace

void register_secret_commands(CLI::App& app, Context& ctx) {
  auto* secret = app.add_subcommand("secret", "Add, list, read and remove secrets (encrypted per-project values)");
  secret->require_subcommand(1);
  constexpr const char* kProjectHelp = "Project (default: your own)";

  auto* add = secret->add_subcommand("add", "Create or replace a secret");
  auto a_key = std::make_shared<std::string>();
  auto a_value = std::make_shared<std::string>();
  auto a_project = std::make_shared<std::string>();
  add->add_option("KEY", *a_key, "Name: a letter or '_', then letters, digits, '_', '.', '-'")->required();
  add->add_option("VALUE", *a_value, "The value; @FILE reads a file (any bytes, at most 1 MiB), @- reads stdin")
      ->required();
  add->add_option("-p,--project", *a_project, kProjectHelp)->type_name("PROJECT");
  on_run(add, ctx, [&ctx, a_key, a_value, a_project] { return run_add(ctx, *a_key, *a_value, *a_project); });

  auto* ls = secret->add_subcommand("ls", "List the secrets you may read (names only, never values)");
  auto l_project = std::make_shared<std::string>();
  ls->add_option("-p,--project", *l_project, "Only this project's (default: every project)")->type_name("PROJECT");
  on_run(ls, ctx, [&ctx, l_project] { return run_ls(ctx, *l_project); });

  auto* get = secret->add_subcommand("get", "Print a secret's value to stdout, as it is (-o json: base64 in JSON)");
  auto g_key = std::make_shared<std::string>();
  auto g_project = std::make_shared<std::string>();
  get->add_option("KEY", *g_key, "The secret")->required();
  get->add_option("-p,--project", *g_project, kProjectHelp)->type_name("PROJECT");
  on_run(get, ctx, [&ctx, g_key, g_project] { return run_get(ctx, *g_key, *g_project); });

  auto* rm = secret->add_subcommand("rm", "Delete a secret");
  auto r_key = std::make_shared<std::string>();
  auto r_project = std::make_shared<std::string>();
  rm->add_option("KEY", *r_key, "The secret")->required();
  rm->add_option("-p,--project", *r_project, kProjectHelp)->type_name("PROJECT");
  on_run(rm, ctx, [&ctx, r_key, r_project] { return run_rm(ctx, *r_key, *r_project); });
}

}  // namespace neurod::cli
