// neuro: the command-line client of neurod. Parses the global options, lets each
// command group register its subcommands, runs the chosen one, and turns every
// failure into a message on stderr and an exit code (cli/output.hpp, docs/cli.md).
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "core/units.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace neurod::cli;

void add_global_options(CLI::App& app, GlobalOptions& o) {
  app.add_option("--url", o.url, "Server URL (default: NEURO_URL, the config file, else http://127.0.0.1:8080)")
      ->type_name("URL");
  app.add_option("-o,--output", o.output, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->type_name("FORMAT")
      ->capture_default_str();
  app.add_option("--timeout", o.timeout, "Network timeout for each request")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            auto d = neurod::parse_duration(s);
            if (!d || d->count() <= 0) return "\"" + s + "\" is not a duration such as 30s, 2m or 1500ms";
            return {};
          },
          ""))
      ->type_name("DURATION")
      ->capture_default_str();
  app.add_flag("--no-color", o.no_color, "Never colour the output (also: NO_COLOR=1)");
  app.add_flag("-v,--verbose", o.verbose, "Print each request and its status to stderr");
}

int report(const CliError& e) {
  std::cerr << "neuro: " << e.what() << std::endl;
  return code(e.exit());
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  CLI::App app{"neuro: the command-line client of neurod", "neuro"};
  app.set_version_flag("--version", std::string("neuro ") + NEUROD_VERSION);
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "neuro: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  // Global options are accepted after the subcommand too: `neuro health -o json`.
  app.fallthrough();
  add_global_options(app, ctx.options);
  for (auto reg : kCommandGroups) reg(app, ctx);

  // As docker-credential-neuro (a link to neuro, see `neuro config docker`), the first
  // argument is the credential helper's action: `docker-credential-neuro get`.
  std::vector<char*> args(argv, argv + argc);
  std::string helper_command = "docker-credential";
  if (argc > 0) {
    std::string_view self = argv[0];
    self = self.substr(self.rfind('/') + 1);
    if (self == "docker-credential-neuro") args.insert(args.begin() + 1, helper_command.data());
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help, the version or the usage error
    return rc == 0 ? code(Exit::ok) : code(Exit::usage);
  }
  if (!ctx.action) {
    std::cerr << app.help() << std::flush;
    return code(Exit::usage);
  }
  try {
    return ctx.action();
  } catch (const CliError& e) {
    return report(e);
  } catch (const neurod::Error& e) {
    return report(from_error(e));
  } catch (const std::exception& e) {
    return report(CliError(Exit::failure, e.what()));
  }
}
