// Notifications end to end in one process: jobs on the process runtime, a local HTTP
// receiver as the webhook or Slack endpoint, every case on SQLite and PostgreSQL.
#include "db/rows.hpp"
#include "http/jobs_helpers.hpp"
#include "http/notify_helpers.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sodium.h>

using namespace neurod;
using namespace neurod::jobtest;
using authtest::code;
using notifytest::Receiver;

namespace {

// Fast retries, so that a test sees them: 100 ms, 200 ms, … at most 3 attempts.
const std::string kNotifyYaml =
    "  notifications:\n    retry_initial: 100ms\n    retry_max: 400ms\n    max_attempts: 3\n"
    "    poll_interval: 50ms\n";

// jobs_keys: more keys under modules.jobs; notify_keys: more under modules.notifications.
authtest::Env notify_env(db::Dialect d, const std::string& jobs_keys = "", const std::string& notify_keys = "") {
  return authtest::Env(d, "", executor_yaml("process", jobs_keys + kNotifyYaml + notify_keys));
}

json subscribe(Api& api, const json& body) {
  auto r = api.post("/api/v1/notifications/subscriptions", body);
  REQUIRE_STATUS(r, 201);
  return r.json();
}

std::string hmac_hex(const std::string& key, const std::string& text) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  std::string out;
  for (unsigned char c : mac) out += fmt::format("{:02x}", c);
  return out;
}

// Polls the delivery log until `done` holds for the newest delivery of the subscription.
template <class Pred>
json wait_delivery(Api& api, const std::string& sub, Pred done, std::chrono::seconds deadline = std::chrono::seconds(20)) {
  json last;
  bool ok = authtest::eventually(
      [&] {
        auto r = api.get("/api/v1/notifications/deliveries?subscription_id=" + sub);
        if (r.status != 200) return false;
        last = r.json();
        return !last.empty() && done(last[0]);
      },
      deadline);
  CHECK_MESSAGE(ok, "the delivery did not reach the expected state; last: " << last.dump());
  return last.empty() ? json::object() : last[0];
}

}  // namespace

// What the notifications tables hold where targets and secrets live, as stored.
std::string stored_targets(db::Database& db) {
  return db.read([](soci::session& s) {
    std::string out;
    soci::rowset<soci::row> subs = (s.prepare << "SELECT target, secret FROM notify_subscriptions");
    for (const auto& r : subs) out += db::as_string(r, 0) + "\n" + db::as_string(r, 1) + "\n";
    soci::rowset<soci::row> dels = (s.prepare << "SELECT target, payload FROM notify_deliveries");
    for (const auto& r : dels) out += db::as_string(r, 0) + "\n" + db::as_string(r, 1) + "\n";
    return out;
  });
}

TEST_CASE_TEMPLATE("notifications: a failed job is delivered once to a signed webhook", B, NEUROD_DB_BACKENDS) {
  Receiver hook;
  auto env = notify_env(B::kDialect);
  auto alice = env.user("alice");
  auto sub = subscribe(alice, {{"channel", "webhook"}, {"target", hook.url()}, {"statuses", {"failed"}}});
  std::string secret = sub["secret"];
  CHECK(secret.rfind("whsec_", 0) == 0);
  CHECK(sub["events"] == json::array({"job.status"}));
  // The secret is shown once: never in a listing or a read.
  auto got = alice.get("/api/v1/notifications/subscriptions/" + sub["id"].template get<std::string>());
  REQUIRE_STATUS(got, 200);
  CHECK_FALSE(got.json().contains("secret"));
  CHECK(alice.get("/api/v1/notifications/subscriptions").body.find(secret) == std::string::npos);
  CHECK(stored_targets(env.server().app().db()).find(secret) == std::string::npos);  // sealed at rest

  auto ok = submit_job(alice, sh_job("true"));
  CHECK(wait_finished(alice, ok)["status"] == "succeeded");
  auto bad = submit_job(alice, sh_job("echo boom; exit 3", {{"name", "train-1"}}));
  CHECK(wait_finished(alice, bad)["status"] == "failed");

  REQUIRE(authtest::eventually([&] { return hook.count() >= 1; }, std::chrono::seconds(20)));
  auto delivered = wait_delivery(alice, sub["id"], [](const json& d) { return d["status"] == "delivered"; });
  // The succeeded job is not asked for: only the failure arrives, once.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto all = hook.received();
  REQUIRE(all.size() == 1);
  const auto& r = all[0];
  CHECK(r.method == "POST");
  CHECK(r.target == "/hook");
  CHECK(r.header("content-type") == "application/json");
  auto body = json::parse(r.body);
  CHECK(body["type"] == "job.status");
  CHECK(body["data"]["job_id"] == bad);
  CHECK(body["data"]["status"] == "failed");
  CHECK(body["data"]["exit_code"] == 3);
  CHECK(body["data"]["name"] == "train-1");
  CHECK(body["subject"].template get<std::string>().find("train-1") != std::string::npos);
  // The signature covers the timestamp and the body.
  auto ts = r.header("x-neurod-timestamp");
  REQUIRE_FALSE(ts.empty());
  CHECK(std::abs(std::stoll(ts) - authtest::now_ms() / 1000) < 120);
  CHECK(r.header("x-neurod-signature") == "sha256=" + hmac_hex(secret, ts + "." + r.body));
  CHECK(r.header("x-neurod-signature") != "sha256=" + hmac_hex(secret, std::to_string(std::stoll(ts) + 1) + "." + r.body));
  // The idempotency key is the same in the headers, the body and the delivery log.
  auto key = r.header("idempotency-key");
  CHECK(key.size() == 32);
  CHECK(r.header("x-neurod-delivery") == key);
  CHECK(body["delivery"] == key);
  CHECK(r.header("x-neurod-event") == "job.status");
  CHECK(delivered["idempotency_key"] == key);
  CHECK(delivered["attempts"] == 1);
  CHECK(delivered["channel"] == "webhook");
  CHECK(delivered["target"].template get<std::string>().find("/hook") == std::string::npos);  // masked
}

TEST_CASE_TEMPLATE("notifications: a failed delivery is retried with the same key, then given up", B, NEUROD_DB_BACKENDS) {
  auto env = notify_env(B::kDialect);
  auto alice = env.user("alice");
  {
    Receiver flaky({500});  // the first answer is a 500, then 200
    auto sub = subscribe(alice, {{"channel", "webhook"}, {"target", flaky.url()}});
    std::string id = sub["id"];
    auto t = alice.post("/api/v1/notifications/subscriptions/" + id + "/test", json::object());
    REQUIRE_STATUS(t, 202);
    CHECK(t.json()["type"] == "notification.test");
    auto d = wait_delivery(alice, id, [](const json& x) { return x["status"] == "delivered"; });
    CHECK(d["attempts"] == 2);
    auto all = flaky.received();
    REQUIRE(all.size() == 2);
    CHECK(all[0].header("idempotency-key") == all[1].header("idempotency-key"));
    CHECK(all[0].body == all[1].body);
    auto detail = alice.get("/api/v1/notifications/deliveries/" + std::to_string(d["id"].template get<std::int64_t>()));
    REQUIRE_STATUS(detail, 200);
    auto log = detail.json()["log"];
    REQUIRE(log.size() == 2);
    CHECK(log[0]["ok"] == false);
    CHECK(log[0]["response_status"] == 500);
    CHECK(log[0]["error"].template get<std::string>().find("HTTP 500") != std::string::npos);
    CHECK(log[1]["ok"] == true);
    CHECK(log[1]["response_status"] == 200);
  }
  {
    Receiver down({}, 503);  // never accepts it
    auto sub = subscribe(alice, {{"channel", "webhook"}, {"target", down.url()}});
    std::string id = sub["id"];
    REQUIRE_STATUS(alice.post("/api/v1/notifications/subscriptions/" + id + "/test", json::object()), 202);
    auto d = wait_delivery(alice, id, [](const json& x) { return x["status"] == "dead"; });
    CHECK(d["attempts"] == 3);  // max_attempts
    CHECK(d["next_attempt_at"].is_null());
    CHECK(d["last_error"].template get<std::string>().find("HTTP 503") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    CHECK(down.count() == 3);  // nothing after dead
  }
}

TEST_CASE_TEMPLATE("notifications: Slack gets {text}, and its URL is never shown", B, NEUROD_DB_BACKENDS) {
  Receiver slack;
  auto env = notify_env(B::kDialect);
  auto alice = env.user("alice");
  auto url = slack.url("/services/T000/B000/XXXXSECRETXXXX");
  auto sub = subscribe(alice, {{"channel", "slack"}, {"target", url}, {"statuses", {"succeeded"}}});
  CHECK_FALSE(sub.contains("secret"));
  CHECK(sub["target"].template get<std::string>().find("XXXXSECRETXXXX") == std::string::npos);
  CHECK(alice.get("/api/v1/notifications/subscriptions").body.find("XXXXSECRETXXXX") == std::string::npos);
  auto id = submit_job(alice, sh_job("true", {{"name", "ok-job"}}));
  CHECK(wait_finished(alice, id)["status"] == "succeeded");
  REQUIRE(authtest::eventually([&] { return slack.count() >= 1; }, std::chrono::seconds(20)));
  auto r = slack.received()[0];
  CHECK(r.target == "/services/T000/B000/XXXXSECRETXXXX");
  auto body = json::parse(r.body);
  REQUIRE(body.is_object());
  CHECK(body.size() == 1);
  auto text = body["text"].template get<std::string>();
  CHECK(text.rfind("*[neurod] Job ok-job (" + id + ") succeeded", 0) == 0);
  CHECK_FALSE(r.header("idempotency-key").empty());
  auto log = alice.get("/api/v1/notifications/deliveries").body;
  CHECK(log.find("XXXXSECRETXXXX") == std::string::npos);
  // At rest the URL is sealed, in the subscription and in its delivery.
  auto stored = stored_targets(env.server().app().db());
  CHECK(stored.find("nd1:") != std::string::npos);
  CHECK(stored.find("XXXXSECRETXXXX") == std::string::npos);
}

TEST_CASE_TEMPLATE("notifications: others' subscriptions are hidden and project ones need project rights", B,
                   NEUROD_DB_BACKENDS) {
  auto env = notify_env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  auto sub = subscribe(alice, {{"channel", "webhook"}, {"target", "http://127.0.0.1:9/a"}});
  std::string id = sub["id"];
  auto path = "/api/v1/notifications/subscriptions/" + id;
  EXPECT_STATUS(bob.get(path), 404);
  CHECK(code(bob.get(path)) == "subscription_not_found");
  EXPECT_STATUS(bob.del(path), 404);
  EXPECT_STATUS(bob.post(path + "/test", json::object()), 404);
  EXPECT_STATUS(bob.get("/api/v1/notifications/deliveries?subscription_id=" + id), 404);
  CHECK(bob.get("/api/v1/notifications/subscriptions").json().empty());
  auto t = alice.post(path + "/test", json::object());
  REQUIRE_STATUS(t, 202);
  auto delivery = "/api/v1/notifications/deliveries/" + std::to_string(t.json()["id"].template get<std::int64_t>());
  EXPECT_STATUS(bob.get(delivery), 404);
  EXPECT_STATUS(alice.get(delivery), 200);
  CHECK(bob.get("/api/v1/notifications/deliveries").json().empty());
  // Without an SMTP server, email is refused up front.
  auto no_smtp = alice.post("/api/v1/notifications/subscriptions", {{"channel", "email"}, {"target", "a@b.c"}});
  EXPECT_STATUS(no_smtp, 400);
  CHECK(code(no_smtp) == "email_not_configured");
  EXPECT_STATUS(env.anonymous().get("/api/v1/notifications/subscriptions"), 401);
  EXPECT_STATUS(env.anonymous().post("/api/v1/notifications/subscriptions", {{"channel", "email"}}), 401);

  // A project's subscription: alice runs project ml, bob is not in it.
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 201);
  json project_sub = {{"channel", "webhook"}, {"target", "http://127.0.0.1:9/ml"}, {"project_name", "ml"}};
  auto denied = bob.post("/api/v1/notifications/subscriptions", project_sub);
  EXPECT_STATUS(denied, 403);
  auto ml = subscribe(alice, project_sub);
  CHECK(ml["project_name"] == "ml");
  EXPECT_STATUS(bob.get("/api/v1/notifications/subscriptions/" + ml["id"].template get<std::string>()), 404);
  // Once bob may run jobs in ml, he sees and may remove its subscriptions.
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/bob", {{"role", "writer"}}), 200);
  auto listed = bob.get("/api/v1/notifications/subscriptions").json();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["id"] == ml["id"]);
  EXPECT_STATUS(bob.del("/api/v1/notifications/subscriptions/" + ml["id"].template get<std::string>()), 204);

  // Alice removes hers; then it is gone for her too.
  EXPECT_STATUS(alice.del(path), 204);
  EXPECT_STATUS(alice.get(path), 404);
}

TEST_CASE_TEMPLATE("notifications: bad subscriptions get clear 400s", B, NEUROD_DB_BACKENDS) {
  auto env = notify_env(B::kDialect, "", "    email:\n      url: smtp://127.0.0.1:9\n");
  auto alice = env.user("alice");
  auto post = [&](const json& body) { return alice.post("/api/v1/notifications/subscriptions", body); };
  auto r = post({{"channel", "webhook"}, {"target", "ftp://example.com/x"}});
  EXPECT_STATUS(r, 400);
  CHECK(code(r) == "invalid_target");
  r = post({{"channel", "slack"}, {"target", "not a url"}});
  EXPECT_STATUS(r, 400);
  r = post({{"channel", "webhook"}, {"target", "http://user:pw@example.com/"}});
  EXPECT_STATUS(r, 400);
  r = post({{"channel", "email"}, {"target", "alice"}});
  EXPECT_STATUS(r, 400);
  CHECK(code(r) == "invalid_target");
  r = post({{"channel", "pigeon"}, {"target", "x"}});
  EXPECT_STATUS(r, 400);
  CHECK(code(r) == "unknown_channel");
  r = post({{"channel", "webhook"}, {"target", "http://127.0.0.1:9/"}, {"events", {"job.exploded"}}});
  EXPECT_STATUS(r, 400);
  CHECK(code(r) == "unknown_event");
  r = post({{"channel", "webhook"}, {"target", "http://127.0.0.1:9/"}, {"statuses", {"exploded"}}});
  EXPECT_STATUS(r, 400);
  CHECK(code(r) == "unknown_status");
  r = post({{"channel", "webhook"}, {"target", "http://127.0.0.1:9/"}, {"events", json::array()}});
  EXPECT_STATUS(r, 400);
  r = post({{"channel", "webhook"}, {"target", "http://127.0.0.1:9/"}, {"evnets", {"job.status"}}});
  EXPECT_STATUS(r, 400);
  r = post({{"channel", "webhook"}, {"target", 42}});
  EXPECT_STATUS(r, 400);
  r = post(json::array());
  EXPECT_STATUS(r, 400);
  r = alice.request("POST", "/api/v1/notifications/subscriptions", "{\"channel\": ");
  EXPECT_STATUS(r, 400);
  r = alice.request("POST", "/api/v1/notifications/subscriptions",
                    json{{"channel", "webhook"}, {"target", "http://127.0.0.1:9/" + std::string(20000, 'a')}}.dump());
  EXPECT_STATUS(r, 413);
  EXPECT_STATUS(alice.get("/api/v1/notifications/deliveries?limit=0"), 400);
  EXPECT_STATUS(alice.get("/api/v1/notifications/deliveries?limit=x"), 400);
  EXPECT_STATUS(alice.get("/api/v1/notifications/deliveries/abc"), 404);
  EXPECT_STATUS(alice.put("/api/v1/notifications/preferences", {{"default_email", "no"}}), 400);
  CHECK(alice.get("/api/v1/notifications/subscriptions").json().empty());  // nothing was made
}

TEST_CASE_TEMPLATE("notifications: a transition while the module was off is told after it starts again", B,
                   NEUROD_DB_BACKENDS) {
  Receiver hook;
  std::unique_ptr<authtest::Env> first;
  std::string alice_token, sub_id;
  {
    test::ServerSpec s = authtest::Env::spec(B::kDialect, "", executor_yaml("process", kNotifyYaml));
    first = std::make_unique<authtest::Env>(s);
    auto alice = first->user("alice");
    alice_token = alice.token();
    sub_id = subscribe(alice, {{"channel", "webhook"}, {"target", hook.url()}})["id"];
    first->server().app().stop();
  }
  // The later servers share the first one's database and its sealing key (as control planes
  // sharing a database must).
  auto key = "    seal_key_file: " + (first->server().data_dir() / "notifications" / "seal.key").string() + "\n";
  auto on_same_db = [&](const std::string& notify_yaml) {
    test::ServerSpec s = authtest::Env::spec(B::kDialect, "", executor_yaml("process", notify_yaml + key));
    s.database_url = first->server().database_url();
    return std::make_unique<test::TestServer>(s);
  };
  std::string job;
  {
    // The module is off: the job fails with nobody listening.
    auto server = on_same_db("  notifications:\n    enabled: false\n");
    Api alice(*server, alice_token);
    job = submit_job(alice, sh_job("exit 1"));
    CHECK(wait_finished(alice, job)["status"] == "failed");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(hook.count() == 0);
    server->app().stop();
  }
  auto server = on_same_db(kNotifyYaml);
  Api alice(*server, alice_token);
  REQUIRE(authtest::eventually([&] { return hook.count() >= 1; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto all = hook.received();
  REQUIRE(all.size() == 1);
  CHECK(json::parse(all[0].body)["data"]["job_id"] == job);
  CHECK(json::parse(all[0].body)["data"]["status"] == "failed");
}

TEST_CASE_TEMPLATE("notifications: cannot start, life span ending, quota thresholds and the default email", B,
                   NEUROD_DB_BACKENDS) {
  Receiver hook;
  // No SMTP server listens on port 9: the default email is queued and fails, which the
  // delivery log shows.
  auto env = notify_env(B::kDialect, "    life_span_warning: 1h\n",
                        "    email:\n      url: smtp://127.0.0.1:9\n    defaults:\n      email_owner: true\n");
  auto& admin = env.admin();
  REQUIRE_STATUS(admin.post("/api/v1/users", {{"name", "alice"}, {"password", authtest::kPassword},
                                              {"email", "alice@example.com"}}),
                 201);
  Api alice(env.server(), env.session("alice"));
  auto sub = subscribe(alice, {{"channel", "webhook"},
                               {"target", hook.url()},
                               {"events", {"job.cannot_start", "job.life_span_ending", "quota.threshold"}}});
  // Two 1-CPU jobs fill the 2-CPU node; a third cannot start. The first has a life span
  // of 1 min, inside the 1 h warning window.
  auto a = submit_job(alice, sh_job("sleep 30", {{"max_run_time_minutes", 1}}));
  auto b = submit_job(alice, sh_job("sleep 30"));
  wait_job(alice, a, [](const json& j) { return j["status"] == "running"; });
  wait_job(alice, b, [](const json& j) { return j["status"] == "running"; });
  auto c = submit_job(alice, sh_job("true"));

  auto has = [&](const std::string& type, const std::function<bool(const json&)>& pred) {
    for (const auto& r : hook.received()) {
      auto j = json::parse(r.body);
      if (j["type"] == type && pred(j["data"])) return true;
    }
    return false;
  };
  CHECK(authtest::eventually(
      [&] { return has("job.cannot_start", [&](const json& d) { return d["job_id"] == c && d["reason"] == "capacity"; }); },
      std::chrono::seconds(20)));
  CHECK(authtest::eventually(
      [&] { return has("job.life_span_ending", [&](const json& d) { return d["job_id"] == a; }); },
      std::chrono::seconds(20)));
  // 3.6 CPU-seconds: the two running jobs cross 80% and 100% within seconds.
  REQUIRE_STATUS(admin.put("/api/v1/admin/quotas/users/alice", {{"cpu_hours", 0.001}}), 200);
  CHECK(authtest::eventually(
      [&] {
        return has("quota.threshold", [](const json& d) { return d["percent"] == 80 && d["subject"] == "alice"; }) &&
               has("quota.threshold", [](const json& d) { return d["percent"] == 100 && d["subject"] == "alice"; });
      },
      std::chrono::seconds(30)));
  for (const auto& id : {a, b, c}) alice.del("/api/v1/jobs/" + id);
  wait_finished(alice, a);
  wait_finished(alice, b);
  wait_finished(alice, c);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Each announced once.
  std::map<std::string, int> seen;
  for (const auto& r : hook.received()) {
    auto j = json::parse(r.body);
    auto d = j["data"];
    std::string k = j["type"].template get<std::string>() + ":" + d.value("job_id", "") + ":" + d.value("reason", "") +
                    (d.contains("percent") ? d["percent"].dump() : "");
    ++seen[k];
  }
  for (const auto& [k, n] : seen) {
    CAPTURE(k);
    CHECK(n == 1);
  }
  // The default: alice's finished jobs are emailed to her address on record (the SMTP
  // server is down, so they wait for a retry in the log).
  CHECK(authtest::eventually(
      [&] {
        auto log = alice.get("/api/v1/notifications/deliveries?limit=100").json();
        for (const auto& d : log)
          if (d["subscription_id"] == "default" && d["channel"] == "email" && d["target"] == "alice@example.com" &&
              d["attempts"].template get<int>() >= 1)
            return true;
        return false;
      },
      std::chrono::seconds(20)));
  // Opting out stops new ones.
  auto prefs = alice.put("/api/v1/notifications/preferences", {{"default_email", false}});
  REQUIRE_STATUS(prefs, 200);
  CHECK(prefs.json()["default_email"] == false);
  CHECK(prefs.json()["email"] == "alice@example.com");
  auto before = alice.get("/api/v1/notifications/deliveries?limit=1000").json().size();
  auto d = submit_job(alice, sh_job("exit 2"));
  wait_finished(alice, d);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto after = alice.get("/api/v1/notifications/deliveries?limit=1000").json();
  for (const auto& x : after) CHECK_FALSE((x["subscription_id"] == "default" && x["subject"].template get<std::string>().find(d) != std::string::npos));
  CHECK(after.size() >= before);
}

TEST_CASE_TEMPLATE("notifications: a project subscription hears about every member's jobs there, and only there", B,
                   NEUROD_DB_BACKENDS) {
  Receiver hook;
  auto env = notify_env(B::kDialect);
  auto alice = env.user("alice");
  auto bob = env.user("bob");
  REQUIRE_STATUS(alice.post("/api/v1/projects", {{"name", "ml"}}), 201);
  REQUIRE_STATUS(alice.put("/api/v1/projects/ml/members/bob", {{"role", "writer"}}), 200);
  subscribe(alice, {{"channel", "webhook"}, {"target", hook.url()}, {"project_name", "ml"}, {"statuses", {"succeeded"}}});
  auto own = submit_job(bob, sh_job("true"));  // bob's own project: not ml's business
  CHECK(wait_finished(bob, own)["status"] == "succeeded");
  auto in_ml = submit_job(bob, sh_job("true", {{"project_name", "ml"}}));
  CHECK(wait_finished(bob, in_ml)["status"] == "succeeded");
  REQUIRE(authtest::eventually([&] { return hook.count() >= 1; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto all = hook.received();
  REQUIRE(all.size() == 1);
  auto data = json::parse(all[0].body)["data"];
  CHECK(data["job_id"] == in_ml);
  CHECK(data["owner"] == "bob");
  CHECK(data["project"] == "ml");
  // Bob may read ml's subscriptions' log: the delivery shows for him too.
  auto log = bob.get("/api/v1/notifications/deliveries").json();
  REQUIRE(log.size() == 1);
  CHECK(log[0]["status"] == "delivered");
}
