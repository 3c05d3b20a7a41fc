// neuro notify set|ls|rm|test|log|defaults (modules/notifications/README.md: Endpoints).
// `set` makes one subscription per channel given and prints a webhook's secret once.
#include "cli/api_path.hpp"
#include "cli/auth_format.hpp"
#include "cli/commands.hpp"
#include "cli/table.hpp"

#include <fmt/format.h>

#include <iostream>
#include <sstream>

namespace neurod::cli {

namespace {

using nlohmann::json;

constexpr const char* kOnHelp =
    "What to be told about, comma-separated: failed, succeeded, cancelled, running, pending, suspended (job "
    "statuses), cannot-start, quota, life-span; all: everything (default: failed,succeeded,cancelled)";

// --on words → {events, statuses} of the API.
std::pair<json, json> parse_on(const std::string& text) {
  static const std::vector<std::string> statuses{"pending", "running", "suspended", "succeeded", "failed", "cancelled"};
  json events = json::array(), st = json::array();
  auto add = [](json& list, const std::string& v) {
    if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
  };
  std::stringstream in(text.empty() ? "failed,succeeded,cancelled" : text);
  std::string w;
  while (std::getline(in, w, ',')) {
    w.erase(0, w.find_first_not_of(' '));
    w.erase(w.find_last_not_of(' ') + 1);
    if (w.empty()) continue;
    if (std::find(statuses.begin(), statuses.end(), w) != statuses.end()) {
      add(events, "job.status");
      add(st, w);
    } else if (w == "cannot-start") {
      add(events, "job.cannot_start");
    } else if (w == "quota") {
      add(events, "quota.threshold");
    } else if (w == "life-span") {
      add(events, "job.life_span_ending");
    } else if (w == "all") {
      for (const char* e : {"job.status", "job.cannot_start", "quota.threshold", "job.life_span_ending"}) add(events, e);
      for (const char* s : {"succeeded", "failed", "cancelled"}) add(st, s);
    } else {
      throw CliError(Exit::usage, fmt::format("--on: unknown event '{}'; use {}", w,
                                              "failed, succeeded, cancelled, running, pending, suspended, "
                                              "cannot-start, quota, life-span or all"));
    }
  }
  if (events.empty()) throw CliError(Exit::usage, "--on: name at least one event");
  return {events, st};
}

std::string events_text(const json& sub) {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ",") + s; };
  for (const auto& e : field(sub, "events")) {
    auto name = e.is_string() ? e.get<std::string>() : "";
    if (name == "job.status") {
      for (const auto& s : field(sub, "statuses"))
        if (s.is_string()) add(s.get<std::string>());
    } else if (name == "job.cannot_start") {
      add("cannot-start");
    } else if (name == "quota.threshold") {
      add("quota");
    } else if (name == "job.life_span_ending") {
      add("life-span");
    } else {
      add(name);
    }
  }
  return out;
}

struct SetArgs {
  std::string project, on;
  std::vector<std::string> emails, slacks, webhooks;
};

int run_set(Context& ctx, const SetArgs& a) {
  auto [events, statuses] = parse_on(a.on);
  std::vector<std::pair<std::string, std::string>> targets;
  for (const auto& e : a.emails) targets.emplace_back("email", e);
  for (const auto& s : a.slacks) targets.emplace_back("slack", s);
  for (const auto& w : a.webhooks) targets.emplace_back("webhook", w);
  if (targets.empty()) throw CliError(Exit::usage, "say where to: --email ADDRESS, --slack URL or --webhook URL");
  json made = json::array();
  for (const auto& [channel, target] : targets) {
    json body{{"channel", channel}, {"target", target}, {"events", events}};
    if (!statuses.empty()) body["statuses"] = statuses;
    if (!a.project.empty()) body["project_name"] = a.project;
    auto sub = ctx.send_json("POST", api("/notifications/subscriptions"), body);
    made.push_back(sub);
    if (ctx.json_output()) continue;
    std::cout << "Subscribed " << cell(sub, "id") << ": " << channel << " to " << cell(sub, "target") << " on "
              << events_text(sub) << (a.project.empty() ? "" : " in project " + a.project) << "." << std::endl;
    if (sub.contains("secret"))
      std::cout << "Webhook secret (shown only now; check X-Neurod-Signature with it): " << cell(sub, "secret")
                << std::endl;
  }
  if (ctx.json_output()) print_json(made.size() == 1 ? made[0] : made);
  return code(Exit::ok);
}

int run_ls(Context& ctx) {
  auto list = ctx.get_json(api("/notifications/subscriptions"));
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"ID"}, {"CHANNEL"}, {"TARGET"}, {"PROJECT"}, {"ON"}, {"OWNER"}, {"CREATED"}});
  if (list.is_array())
    for (const auto& s : list)
      t.add_row({cell(s, "id"), cell(s, "channel"), cell(s, "target"), cell(s, "project_name"), events_text(s),
                 cell(s, "owner"), show_time(field(s, "created_at"))});
  std::cout << t.render(ctx.color()) << std::flush;
  return code(Exit::ok);
}

int run_rm(Context& ctx, const std::string& id) {
  ctx.send_json("DELETE", api("/notifications/subscriptions/" + path_segment(id)));
  if (ctx.json_output())
    print_json({{"id", id}, {"removed", true}});
  else
    std::cout << "Removed subscription " << id << "." << std::endl;
  return code(Exit::ok);
}

int run_test(Context& ctx, const std::string& id) {
  std::vector<std::string> ids;
  if (!id.empty()) {
    ids.push_back(id);
  } else {
    auto me = ctx.me();
    for (const auto& s : ctx.get_json(api("/notifications/subscriptions")))
      if (cell(s, "owner") == me) ids.push_back(cell(s, "id"));
    if (ids.empty()) throw CliError(Exit::failure, "you have no subscriptions to test (neuro notify set makes one)");
  }
  json out = json::array();
  for (const auto& i : ids) {
    auto d = ctx.send_json("POST", api("/notifications/subscriptions/" + path_segment(i) + "/test"), json::object());
    out.push_back(d);
    if (!ctx.json_output())
      std::cout << "Queued a test notification through " << i << " (" << cell(d, "channel") << " to "
                << cell(d, "target") << "); `neuro notify log` shows how it went (delivery " << cell(d, "id") << ")."
                << std::endl;
  }
  if (ctx.json_output()) print_json(out.size() == 1 ? out[0] : out);
  return code(Exit::ok);
}

int run_log(Context& ctx, int limit, const std::string& subscription) {
  std::string path = api("/notifications/deliveries") + "?limit=" + std::to_string(limit);
  if (!subscription.empty()) path += "&subscription_id=" + path_segment(subscription);
  auto list = ctx.get_json(path);
  if (ctx.json_output()) {
    print_json(list);
    return code(Exit::ok);
  }
  Table t({{"ID", Align::right}, {"TIME"}, {"EVENT"}, {"CHANNEL"}, {"TARGET"}, {"STATUS", Align::left, true},
           {"TRIES", Align::right}, {"SUBJECT / ERROR"}});
  if (list.is_array())
    for (const auto& d : list) {
      auto err = cell(d, "last_error");
      auto status = cell(d, "status");
      t.add_row({cell(d, "id"), show_time(field(d, "created_at")), cell(d, "type"), cell(d, "channel"),
                 cell(d, "target"), status, cell(d, "attempts"),
                 status == "delivered" || err.empty() ? cell(d, "subject") : err});
    }
  std::cout << t.render(ctx.color()) << std::flush;
  return code(Exit::ok);
}

int run_defaults(Context& ctx, const std::string& value) {
  json prefs;
  if (value.empty()) {
    prefs = ctx.get_json(api("/notifications/preferences"));
  } else if (value == "on" || value == "off") {
    prefs = ctx.send_json("PUT", api("/notifications/preferences"), {{"default_email", value == "on"}});
  } else {
    throw CliError(Exit::usage, "neuro notify defaults [on|off]");
  }
  if (ctx.json_output()) {
    print_json(prefs);
    return code(Exit::ok);
  }
  bool enabled = prefs.value("defaults_enabled", false);
  bool mine = prefs.value("default_email", true);
  auto email = cell(prefs, "email");
  std::cout << "Default email notifications: " << (mine ? "on" : "off (you opted out)")
            << (enabled ? "" : "; the administrator has not enabled them") << "." << std::endl;
  std::cout << "Your address on record: " << (email.empty() ? "none" : email) << "." << std::endl;
  return code(Exit::ok);
}

}  // namespace

void register_notify_commands(CLI::App& app, Context& ctx) {
  auto* notify = app.add_subcommand("notify", "Be told about jobs and quotas by email, Slack or webhook");
  notify->require_subcommand(1);

  auto* set = notify->add_subcommand("set", "Subscribe: one subscription per --email, --slack and --webhook given");
  auto s = std::make_shared<SetArgs>();
  set->add_option("-p,--project", s->project, "A project's jobs (needs the right to run jobs there); default: yours")
      ->type_name("PROJECT");
  set->add_option("--email", s->emails, "Email this address")->type_name("ADDRESS");
  set->add_option("--slack", s->slacks, "Post to this Slack incoming-webhook URL")->type_name("URL");
  set->add_option("--webhook", s->webhooks, "POST signed JSON to this URL (its secret is printed once)")
      ->type_name("URL");
  set->add_option("--on", s->on, kOnHelp)->type_name("EVENTS");
  on_run(set, ctx, [&ctx, s] { return run_set(ctx, *s); });

  auto* ls = notify->add_subcommand("ls", "List your subscriptions (and those of projects you run jobs in)");
  on_run(ls, ctx, [&ctx] { return run_ls(ctx); });

  auto* rm = notify->add_subcommand("rm", "Remove a subscription");
  auto rm_id = std::make_shared<std::string>();
  rm->add_option("ID", *rm_id, "The subscription's id (neuro notify ls)")->required();
  on_run(rm, ctx, [&ctx, rm_id] { return run_rm(ctx, *rm_id); });

  auto* test = notify->add_subcommand("test", "Send a test notification (without ID: through each of yours)");
  auto test_id = std::make_shared<std::string>();
  test->add_option("ID", *test_id, "The subscription's id");
  on_run(test, ctx, [&ctx, test_id] { return run_test(ctx, *test_id); });

  auto* log = notify->add_subcommand("log", "The delivery log of your notifications, newest first");
  auto limit = std::make_shared<int>(20);
  auto log_sub = std::make_shared<std::string>();
  log->add_option("-n,--limit", *limit, "How many (1–1000)")->check(CLI::Range(1, 1000))->capture_default_str();
  log->add_option("--subscription", *log_sub, "Only this subscription's")->type_name("ID");
  on_run(log, ctx, [&ctx, limit, log_sub] { return run_log(ctx, *limit, *log_sub); });

  auto* defaults = notify->add_subcommand("defaults", "Show, or turn on or off, the administrator's default emails");
  auto value = std::make_shared<std::string>();
  defaults->add_option("STATE", *value, "on or off")->check(CLI::IsMember({"on", "off"}));
  on_run(defaults, ctx, [&ctx, value] { return run_defaults(ctx, *value); });
}

}  // namespace neurod::cli
