#include "modules/jobs/repo.hpp"

#include "db/rows.hpp"

#include <map>
#include <sstream>

namespace neurod::jobs::repo {

namespace {

using db::as_int64;
using db::as_string;

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}

constexpr const char* kCols =
    "id, owner, project, created_at, spec, executor, attempt, launched, gpu_ids, max_run_time_minutes, restart_at, "
    "charged_ms, price_per_hour";

Row row_from(const soci::row& r, const std::string& cluster) {
  Row out;
  auto& j = out.job;
  j.cluster = cluster;
  j.id = as_string(r, 0);
  j.owner = as_string(r, 1);
  j.created_ms = as_int64(r, 3);
  j.spec = parse_stored_spec(nlohmann::json::parse(as_string(r, 4)));
  j.spec.project = as_string(r, 2);
  j.executor = as_string(r, 5);
  out.run.executor = j.executor;
  out.run.attempt = static_cast<int>(as_int64(r, 6));
  j.attempt = out.run.attempt;
  out.run.launched = as_int64(r, 7) != 0;
  out.run.gpu_ids = split(as_string(r, 8));
  j.gpu_ids = out.run.gpu_ids;
  if (auto m = db::as_opt_int64(r, 9)) j.spec.max_run_time_minutes = static_cast<int>(*m);
  else j.spec.max_run_time_minutes.reset();
  out.run.restart_at = db::as_opt_int64(r, 10);
  out.run.charged_ms = as_int64(r, 11);
  j.price_per_hour = db::as_double(r, 12);
  return out;
}

// Loads the histories of these rows in one query.
void load_statuses(soci::session& s, std::vector<Row>& rows) {
  if (rows.empty()) return;
  std::map<std::string, Row*> by_id;
  for (auto& r : rows) by_id[r.job.id] = &r;
  // Chunks keep the statement within both backends' parameter limits.
  std::vector<std::string> ids;
  for (auto& r : rows) ids.push_back(r.job.id);
  for (std::size_t start = 0; start < ids.size(); start += 500) {
    std::size_t end = std::min(ids.size(), start + 500);
    std::string sql = "SELECT job_id, status, reason, description, exit_code, time FROM job_statuses WHERE job_id IN (";
    for (std::size_t i = start; i < end; ++i) sql += (i == start ? "'" : ",'") + ids[i] + "'";
    sql += ") ORDER BY seq";
    soci::rowset<soci::row> rs = s.prepare << sql;
    for (const auto& r : rs) {
      auto it = by_id.find(as_string(r, 0));
      if (it == by_id.end()) continue;
      StatusItem item;
      item.status = parse_status(as_string(r, 1)).value_or(Status::pending);
      item.reason = as_string(r, 2);
      item.description = as_string(r, 3);
      if (auto c = db::as_opt_int64(r, 4)) item.exit_code = static_cast<int>(*c);
      item.time_ms = as_int64(r, 5);
      it->second->job.statuses.push_back(std::move(item));
    }
  }
  for (auto& r : rows)
    if (r.job.statuses.empty()) r.job.statuses.push_back(StatusItem{Status::pending, "Creating", "", {}, r.job.created_ms});
}

}  // namespace

void insert(soci::session& s, const Job& job) {
  auto spec = spec_to_json(job.spec).dump();
  std::string name = job.spec.name;
  soci::indicator name_ind = name.empty() ? soci::i_null : soci::i_ok;
  int max_rt = job.spec.max_run_time_minutes.value_or(0);
  soci::indicator max_ind = job.spec.max_run_time_minutes ? soci::i_ok : soci::i_null;
  std::string status(to_string(job.current().status));
  std::string gpu_ids = join(job.gpu_ids);
  s << "INSERT INTO jobs (id, name, owner, project, status, priority, created_at, spec, gpu_ids, max_run_time_minutes, "
       "price_per_hour) VALUES (:id, :name, :owner, :project, :status, :priority, :created, :spec, :gpus, :maxrt, :price)",
      soci::use(job.id), soci::use(name, name_ind), soci::use(job.owner), soci::use(job.spec.project),
      soci::use(status), soci::use(job.spec.priority), soci::use(job.created_ms), soci::use(spec), soci::use(gpu_ids),
      soci::use(max_rt, max_ind), soci::use(job.price_per_hour);
  for (const auto& t : job.spec.tags) s << "INSERT INTO job_tags (job_id, tag) VALUES (:j, :t)", soci::use(job.id), soci::use(t);
  for (const auto& item : job.statuses) {
    int code = item.exit_code.value_or(0);
    soci::indicator code_ind = item.exit_code ? soci::i_ok : soci::i_null;
    std::string st(to_string(item.status));
    s << "INSERT INTO job_statuses (job_id, status, reason, description, exit_code, time) VALUES (:j, :s, :r, :d, :c, "
         ":t)",
        soci::use(job.id), soci::use(st), soci::use(item.reason), soci::use(item.description), soci::use(code, code_ind),
        soci::use(item.time_ms);
  }
}

std::int64_t append_status(soci::session& s, const std::string& id, const StatusItem& item) {
  int code = item.exit_code.value_or(0);
  soci::indicator code_ind = item.exit_code ? soci::i_ok : soci::i_null;
  std::string st(to_string(item.status));
  s << "INSERT INTO job_statuses (job_id, status, reason, description, exit_code, time) VALUES (:j, :s, :r, :d, :c, :t)",
      soci::use(id), soci::use(st), soci::use(item.reason), soci::use(item.description), soci::use(code, code_ind),
      soci::use(item.time_ms);
  std::int64_t finished = item.time_ms;
  soci::indicator fin_ind = is_finished(item.status) ? soci::i_ok : soci::i_null;
  s << "UPDATE jobs SET status = :s, finished_at = :f WHERE id = :id", soci::use(st), soci::use(finished, fin_ind),
      soci::use(id);
  soci::rowset<soci::row> rs = (s.prepare << "SELECT MAX(seq) FROM job_statuses WHERE job_id = :j", soci::use(id));
  for (const auto& r : rs) return as_int64(r, 0);
  return 0;
}

void save_run_state(soci::session& s, const std::string& id, const RunState& run) {
  int launched = run.launched ? 1 : 0;
  std::string gpus = join(run.gpu_ids);
  std::int64_t restart_at = run.restart_at.value_or(0);
  soci::indicator ra_ind = run.restart_at ? soci::i_ok : soci::i_null;
  s << "UPDATE jobs SET executor = :e, attempt = :a, launched = :l, gpu_ids = :g, restart_at = :r, charged_ms = :c "
       "WHERE id = :id",
      soci::use(run.executor), soci::use(run.attempt), soci::use(launched), soci::use(gpus),
      soci::use(restart_at, ra_ind), soci::use(run.charged_ms), soci::use(id);
}

void set_max_run_time(soci::session& s, const std::string& id, int minutes) {
  s << "UPDATE jobs SET max_run_time_minutes = :m WHERE id = :id", soci::use(minutes), soci::use(id);
}

std::optional<Row> load(soci::session& s, const std::string& id, const std::string& cluster) {
  std::vector<Row> rows;
  soci::rowset<soci::row> rs = (s.prepare << std::string("SELECT ") + kCols + " FROM jobs WHERE id = :id", soci::use(id));
  for (const auto& r : rs) rows.push_back(row_from(r, cluster));
  if (rows.empty()) return std::nullopt;
  load_statuses(s, rows);
  return std::move(rows.front());
}

std::vector<std::string> ids_named(soci::session& s, const std::string& name) {
  std::vector<std::string> out;
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT id FROM jobs WHERE name = :n ORDER BY created_at DESC, id DESC", soci::use(name));
  for (const auto& r : rs) out.push_back(as_string(r, 0));
  return out;
}

std::vector<Row> list(soci::session& s, const Filter& f, const std::string& cluster) {
  // Values are bound, never spliced: the WHERE clause is built from fixed fragments.
  std::string sql = std::string("SELECT ") + kCols + " FROM jobs WHERE 1=1";
  std::vector<std::string> values;
  auto in = [&](const char* column, const std::vector<std::string>& v) {
    if (v.empty()) return;
    sql += std::string(" AND ") + column + " IN (";
    for (std::size_t i = 0; i < v.size(); ++i) {
      sql += (i ? ", :v" : ":v") + std::to_string(values.size());
      values.push_back(v[i]);
    }
    sql += ")";
  };
  in("status", f.statuses);
  in("owner", f.owners);
  in("project", f.projects);
  if (!f.name.empty()) {
    sql += " AND name = :v" + std::to_string(values.size());
    values.push_back(f.name);
  }
  for (const auto& t : f.tags) {
    sql += " AND id IN (SELECT job_id FROM job_tags WHERE tag = :v" + std::to_string(values.size()) + ")";
    values.push_back(t);
  }
  if (f.since_ms) sql += " AND created_at >= " + std::to_string(*f.since_ms);
  if (f.until_ms) sql += " AND created_at <= " + std::to_string(*f.until_ms);
  if (f.after_created && f.after_id) {
    auto c = std::to_string(*f.after_created);
    sql += f.reverse ? " AND (created_at < " + c + " OR (created_at = " + c + " AND id < :v" : " AND (created_at > " + c +
                                                                                                 " OR (created_at = " +
                                                                                                 c + " AND id > :v";
    sql += std::to_string(values.size()) + "))";
    values.push_back(*f.after_id);
  }
  sql += f.reverse ? " ORDER BY created_at DESC, id DESC" : " ORDER BY created_at, id";
  sql += " LIMIT " + std::to_string(f.limit);
  soci::statement st(s);
  std::vector<Row> rows;
  soci::row r;
  st.exchange(soci::into(r));
  for (auto& v : values) st.exchange(soci::use(v));
  st.alloc();
  st.prepare(sql);
  st.define_and_bind();
  st.execute(false);
  while (st.fetch()) rows.push_back(row_from(r, cluster));
  load_statuses(s, rows);
  return rows;
}

std::vector<Row> live(soci::session& s, const std::string& cluster) {
  std::vector<Row> rows;
  soci::rowset<soci::row> rs =
      (s.prepare << std::string("SELECT ") + kCols +
                        " FROM jobs WHERE status IN ('pending', 'running', 'suspended') OR launched = 1 ORDER BY "
                        "created_at, id");
  for (const auto& r : rs) rows.push_back(row_from(r, cluster));
  load_statuses(s, rows);
  return rows;
}

bool has_unfinished_named(soci::session& s, const std::string& owner, const std::string& name) {
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT id FROM jobs WHERE owner = :o AND name = :n AND status IN ('pending', 'running', "
                    "'suspended')",
       soci::use(owner), soci::use(name));
  return rs.begin() != rs.end();
}

std::int64_t count_unfinished(soci::session& s, const std::string& column, const std::string& value) {
  std::string sql = "SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running', 'suspended') AND " +
                    std::string(column == "project" ? "project" : "owner") + " = :v";
  soci::rowset<soci::row> rs = (s.prepare << sql, soci::use(value));
  for (const auto& r : rs) return as_int64(r, 0);
  return 0;
}

std::vector<StatusChange> status_changes_after(soci::session& s, std::int64_t after_seq, std::size_t limit) {
  long long lim = static_cast<long long>(limit);
  soci::rowset<soci::row> rs =
      (s.prepare << "SELECT h.seq, h.job_id, COALESCE(j.name, ''), j.owner, j.project, h.status, h.reason, "
                    "h.description, h.exit_code, h.time FROM job_statuses h JOIN jobs j ON j.id = h.job_id "
                    "WHERE h.seq > :a ORDER BY h.seq LIMIT :l",
       soci::use(after_seq), soci::use(lim));
  std::vector<StatusChange> out;
  for (const auto& r : rs) {
    StatusChange c;
    c.seq = as_int64(r, 0);
    c.job_id = as_string(r, 1);
    c.name = as_string(r, 2);
    c.owner = as_string(r, 3);
    c.project = as_string(r, 4);
    c.item.status = parse_status(as_string(r, 5)).value_or(Status::pending);
    c.item.reason = as_string(r, 6);
    c.item.description = as_string(r, 7);
    if (auto code = db::as_opt_int64(r, 8)) c.item.exit_code = static_cast<int>(*code);
    c.item.time_ms = as_int64(r, 9);
    out.push_back(std::move(c));
  }
  return out;
}

std::int64_t latest_status_seq(soci::session& s) {
  soci::rowset<soci::row> rs = (s.prepare << "SELECT COALESCE(MAX(seq), 0) FROM job_statuses");
  for (const auto& r : rs) return as_int64(r, 0);
  return 0;
}

std::map<std::string, std::int64_t> count_by_status(soci::session& s) {
  std::map<std::string, std::int64_t> out;
  soci::rowset<soci::row> rs = (s.prepare << "SELECT status, COUNT(*) FROM jobs GROUP BY status");
  for (const auto& r : rs) out[r.get<std::string>(0)] = as_int64(r, 1);
  return out;
}

}  // namespace neurod::jobs::repo
