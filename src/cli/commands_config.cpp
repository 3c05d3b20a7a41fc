// neuro config show, neuro config set-url.
#include "cli/commands.hpp"
#include "cli/table.hpp"

#include <iostream>
#include <system_error>

namespace neurod::cli {

namespace {

std::string describe(Source source, std::string_view env_name) {
  switch (source) {
    case Source::flag:
      return "from --url";
    case Source::env:
      return "from " + std::string(env_name);
    case Source::file:
      return "from the config file";
    case Source::default_value:
      return "default";
    case Source::none:
      return "";
  }
  return "";
}

// Never prints the token itself, only whether there is one and where it came from.
int run_show(Context& ctx) {
  const auto& path = ctx.config_path();
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  const auto& s = ctx.settings();
  bool token_set = !s.token.empty();

  if (ctx.json_output()) {
    print_json({{"config_file", path.string()},
                {"config_file_exists", exists},
                {"url", s.url},
                {"url_source", to_string(s.url_source)},
                {"token_set", token_set},
                {"token_source", token_set ? nlohmann::json(to_string(s.token_source)) : nlohmann::json(nullptr)}});
    return code(Exit::ok);
  }
  Table t({{"SETTING"}, {"VALUE"}, {"SOURCE"}});
  t.add_row({"config file", path.string(), exists ? "" : "(does not exist yet)"});
  t.add_row({"url", s.url, describe(s.url_source, "NEURO_URL")});
  t.add_row({"token", token_set ? "set" : "not set", describe(s.token_source, "NEURO_TOKEN")});
  std::cout << t.render(false) << std::flush;
  return code(Exit::ok);
}

int run_set_url(Context& ctx, std::string url) {
  if (auto scheme_end = url.find("://"); scheme_end != std::string::npos)
    while (url.size() > scheme_end + 3 && url.back() == '/') url.pop_back();
  try {
    http::Url::parse(url);
  } catch (const Error& e) {
    throw CliError(Exit::usage, e.what());
  }
  const auto& path = ctx.config_path();
  auto config = ctx.user_config();
  config.url = url;
  save_user_config(path, config);

  if (ctx.json_output()) {
    print_json({{"config_file", path.string()}, {"url", url}});
  } else {
    std::cout << "Server URL set to " << url << " in " << path.string() << std::endl;
  }
  if (ctx.options.url && !ctx.options.url->empty())
    std::cerr << "neuro: note: --url " << *ctx.options.url << " overrides it for this command" << std::endl;
  else if (auto env = ctx.env()("NEURO_URL"))
    std::cerr << "neuro: note: NEURO_URL=" << *env << " is set and takes precedence over the config file" << std::endl;
  return code(Exit::ok);
}

}  // namespace

void register_config_commands(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "Show or change the CLI's settings");
  config->require_subcommand(1);

  auto* show = config->add_subcommand("show", "Show the server URL, whether a token is set, and where each comes from");
  on_run(show, ctx, [&ctx] { return run_show(ctx); });

  auto* set_url = config->add_subcommand("set-url", "Save the server URL in the config file");
  auto url = std::make_shared<std::string>();
  set_url->add_option("URL", *url, "e.g. http://gpu-box:8080 or https://neuro.example.com")->required();
  on_run(set_url, ctx, [&ctx, url] { return run_set_url(ctx, *url); });
}

}  // namespace neurod::cli
