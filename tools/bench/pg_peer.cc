#include "tools/bench/pg_peer.h"

#include "tools/history/history.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "leadflow/v1/events.pb.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/lead/reducer.h"
#include "tools/history/history.h"

namespace leadflow::bench {
namespace {

// The newest Debian PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin).
absl::StatusOr<std::string> PgBinDir() {
  std::string best;
  int best_major = -1;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = (e.path() / "bin").string();
    if (!std::filesystem::exists(bin + "/postgres") || !std::filesystem::exists(bin + "/initdb")) {
      continue;
    }
    const int major = std::atoi(e.path().filename().c_str());
    if (major > best_major) best_major = major, best = bin;
  }
  if (best.empty()) {
    return absl::NotFoundError(
        "no PostgreSQL server under /usr/lib/postgresql (install Debian's 'postgresql' package: "
        "tools/install_deps.sh)");
  }
  return best;
}

std::string PgTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone());
}

// COPY text format: backslash, tab, newline and carriage return escaped.
void AppendCopyText(std::string& out, const std::string& s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

// A binary-format int8 or float8 result cell, as its 8 big-endian bytes.
uint64_t Cell64(const PGresult* r, int row, int col) {
  uint64_t v = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  for (int k = 0; k < 8; ++k) v = (v << 8) | p[k];
  return v;
}

double CellDouble(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  const uint64_t bits = Cell64(r, row, col);
  double d = 0;
  std::memcpy(&d, &bits, sizeof(d));
  return d;
}

void AppendCopyBytea(std::string& out, const std::string& bytes) {
  out += "\\\\x";
  out += absl::BytesToHexString(bytes);
}

// The lead table's row, derived from a lead's events (ingest and rebuild use the same code).
struct LeadRow {
  int64_t version = 0;
  std::string owner;
  int source_channel = 0;
  absl::Time captured_at = absl::InfinitePast(), contacted_at = absl::InfinitePast(),
             qualified_at = absl::InfinitePast(), presented_at = absl::InfinitePast(),
             proposal_at = absl::InfinitePast(), converted_at = absl::InfinitePast(),
             rejected_at = absl::InfinitePast();
};

void ApplyToRow(LeadRow& row, const v1::Event& e) {
  if (e.aggregate_type() != v1::AGGREGATE_TYPE_LEAD) return;
  row.version = e.aggregate_version();
  const absl::Time at = common::FromProto(e.occurred_at());
  auto first = [&](absl::Time& t) {
    if (t == absl::InfinitePast()) t = at;
  };
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured:
      row.captured_at = at;
      row.source_channel = e.lead_captured().source_channel();
      break;
    case v1::Event::kLeadAssigned:
      row.owner = e.lead_assigned().owner();
      break;
    case v1::Event::kInteractionLogged:
      // The same milestones as leadflow's funnel: an outbound touch is a contact, a demo or
      // free trial a presentation, an offer sent a proposal.
      if (e.interaction_logged().direction() == v1::DIRECTION_OUTBOUND) first(row.contacted_at);
      if (e.interaction_logged().kind() == v1::INTERACTION_KIND_DEMO ||
          e.interaction_logged().kind() == v1::INTERACTION_KIND_FREE_TRIAL) {
        first(row.presented_at);
      }
      if (e.interaction_logged().kind() == v1::INTERACTION_KIND_OFFER_SENT) first(row.proposal_at);
      break;
    case v1::Event::kLeadQualified:
      first(row.qualified_at);
      break;
    case v1::Event::kLeadConverted:
      row.converted_at = at;
      break;
    case v1::Event::kLeadRejected:
      row.rejected_at = at;
      break;
    default:
      break;
  }
}

void AppendRow(std::string& out, const std::string& lead_id, const LeadRow& r) {
  auto time = [&](absl::Time t) {
    if (t == absl::InfinitePast()) {
      out += "\\N";
    } else {
      out += PgTime(t);
    }
  };
  AppendCopyText(out, lead_id);
  absl::StrAppend(&out, "\t", r.version, "\t");
  AppendCopyText(out, r.owner);
  absl::StrAppend(&out, "\t", r.source_channel, "\t");
  time(r.captured_at);
  out += '\t';
  time(r.contacted_at);
  out += '\t';
  time(r.qualified_at);
  out += '\t';
  time(r.presented_at);
  out += '\t';
  time(r.proposal_at);
  out += '\t';
  time(r.converted_at);
  out += '\t';
  time(r.rejected_at);
  out += '\n';
}

}  // namespace

// ---- server ----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<PgServer>> PgServer::Start(const PgServerOptions& options) {
  auto bin = PgBinDir();
  if (!bin.ok()) return bin.status();
  auto server = std::unique_ptr<PgServer>(new PgServer());
  server->options_ = options;
  std::filesystem::create_directories(options.dir);
  const std::string user = geteuid() == 0 ? "postgres" : "";
  if (!user.empty()) {
    // The server runs as 'postgres': its directory (and the way to it) must be reachable.
    const struct passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::NotFoundError("no user 'postgres' (Debian's postgresql package creates it)");
    }
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    if (chown(options.dir.c_str(), uid, gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", options.dir, " to postgres failed"));
    }
    for (auto p = std::filesystem::path(options.dir).parent_path(); p.has_relative_path();
         p = p.parent_path()) {
      std::filesystem::permissions(p, std::filesystem::perms::others_exec,
                                   std::filesystem::perm_options::add);
    }
    // The log file is opened by the child after it switched user.
    std::ofstream(options.log_path).close();
    if (chown(options.log_path.c_str(), uid, gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", options.log_path, " to postgres failed"));
    }
  }
  auto initdb = Child::Spawn({*bin + "/initdb", "-D", options.dir, "-U", "postgres", "--auth=trust",
                              "-E", "UTF8", "--no-locale"},
                             options.log_path, user);
  if (!initdb.ok()) return initdb.status();
  ChildExit init_exit = initdb->Wait();
  if (!init_exit.ok()) {
    return absl::InternalError(
        absl::StrCat("initdb failed (", init_exit.Describe(), "), see ", options.log_path));
  }
  auto postgres = Child::Spawn(
      {*bin + "/postgres", "-D", options.dir, "-p", std::to_string(options.port), "-c",
       "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + options.dir, "-c",
       absl::StrCat("shared_buffers=", options.shared_buffers_mb, "MB"), "-c", "fsync=on", "-c",
       "synchronous_commit=on", "-c", "max_wal_size=4GB", "-c", "checkpoint_timeout=15min"},
      options.log_path, user);
  if (!postgres.ok()) return postgres.status();
  server->child_ = std::move(*postgres);
  // Ready when it accepts a connection.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    PGconn* c = PQconnectdb(server->conninfo().c_str());
    const bool up = PQstatus(c) == CONNECTION_OK;
    if (up) server->version_ = absl::StrCat("PostgreSQL ", PQparameterStatus(c, "server_version"));
    PQfinish(c);
    if (up) break;
    if (server->child_.Exited() || absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("PostgreSQL did not start, see ", options.log_path));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return server;
}

PgServer::~PgServer() { Stop(); }

ChildExit PgServer::Stop() {
  // SIGINT: PostgreSQL's "fast" shutdown.
  return child_.Stop(absl::Seconds(60), SIGINT);
}

std::string PgServer::conninfo() const {
  return absl::StrCat("host=127.0.0.1 port=", options_.port, " user=postgres dbname=postgres");
}

// ---- peer ------------------------------------------------------------------------------------

struct PgPeer::Impl {
  PGconn* conn = nullptr;

  absl::Status Check(PGresult* r, const char* what) {
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN) return {};
    std::string msg = absl::StrCat(what, ": ", PQresultErrorMessage(r));
    return absl::InternalError(msg);
  }
  absl::Status Exec(const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    absl::Status st = Check(r, sql.substr(0, 60).c_str());
    PQclear(r);
    return st;
  }
  absl::Status Copy(const std::string& sql, const std::string& data) {
    PGresult* r = PQexec(conn, sql.c_str());
    absl::Status st = Check(r, "COPY");
    PQclear(r);
    if (!st.ok()) return st;
    if (PQputCopyData(conn, data.data(), static_cast<int>(data.size())) != 1 ||
        PQputCopyEnd(conn, nullptr) != 1) {
      return absl::InternalError(absl::StrCat("COPY: ", PQerrorMessage(conn)));
    }
    r = PQgetResult(conn);
    st = Check(r, "COPY end");
    PQclear(r);
    while ((r = PQgetResult(conn)) != nullptr) PQclear(r);
    return st;
  }
  // A query with text parameters and binary results.
  absl::StatusOr<PGresult*> Query(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 1);
    absl::Status st = Check(r, sql.substr(0, 60).c_str());
    if (!st.ok()) {
      PQclear(r);
      return st;
    }
    return r;
  }
};

PgPeer::PgPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgPeer::~PgPeer() {
  if (impl_->conn) PQfinish(impl_->conn);
}

absl::StatusOr<std::unique_ptr<PgPeer>> PgPeer::Connect(const std::string& conninfo) {
  auto impl = std::make_unique<Impl>();
  impl->conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(impl->conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(impl->conn);
    PQfinish(impl->conn);
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", msg));
  }
  return std::unique_ptr<PgPeer>(new PgPeer(std::move(impl)));
}

absl::Status PgPeer::CreateSchema() {
  return impl_->Exec(R"sql(
    CREATE TABLE events (
      global_seq bigserial PRIMARY KEY,
      partition_key text NOT NULL,
      aggregate_id text NOT NULL,
      aggregate_version bigint NOT NULL,
      event_type int NOT NULL,
      occurred_at timestamptz NOT NULL,
      payload bytea NOT NULL,
      UNIQUE (aggregate_id, aggregate_version));
    CREATE INDEX events_by_partition_key ON events (partition_key, global_seq);
    CREATE TABLE commands (command_id text PRIMARY KEY, lead_id text NOT NULL);
    CREATE TABLE leads (
      lead_id text PRIMARY KEY,
      version bigint NOT NULL,
      owner text NOT NULL,
      source_channel int NOT NULL,
      captured_at timestamptz,
      contacted_at timestamptz,
      qualified_at timestamptz,
      presented_at timestamptz,
      proposal_at timestamptz,
      converted_at timestamptz,
      rejected_at timestamptz);
    CREATE INDEX leads_by_captured_at ON leads (captured_at);
    CREATE TEMP TABLE leads_stage (LIKE leads) ON COMMIT DELETE ROWS;
  )sql");
}

absl::Status PgPeer::IngestBatch(const google::protobuf::RepeatedPtrField<v1::Command>& commands,
                                 PgCounts& counts) {
  Impl& db = *impl_;
  // Targets, and the streams to load.
  std::vector<absl::StatusOr<lead::CommandTarget>> targets;
  absl::flat_hash_set<std::string> keys;
  std::vector<std::string> command_ids;
  for (const auto& c : commands) {
    static const common::LeadIdScheme ids(history::kHistoryIdKey);
    static const lead::Identity identity{.ids = &ids, .phone_region = ""};
    targets.push_back(lead::ResolveTarget(c, identity));
    if (targets.back().ok()) keys.insert(targets.back()->lead_id);
    if (c.has_merge_lead()) keys.insert(c.merge_lead().survivor_lead_id());
    command_ids.push_back(lead::MetaOf(c).command_id());
  }
  if (absl::Status st = db.Exec("BEGIN"); !st.ok()) return st;
  auto fail = [&](absl::Status st) {
    (void)db.Exec("ROLLBACK");
    return st;
  };
  // Command ids already used (idempotent retries).
  absl::flat_hash_set<std::string> seen;
  {
    auto r = db.Query("SELECT command_id FROM commands WHERE command_id = ANY($1::text[])",
                      {absl::StrCat("{", absl::StrJoin(command_ids, ","), "}")});
    if (!r.ok()) return fail(r.status());
    for (int i = 0; i < PQntuples(*r); ++i) seen.insert(PQgetvalue(*r, i, 0));
    PQclear(*r);
  }
  absl::flat_hash_map<std::string, lead::LeadState> leads;
  absl::flat_hash_map<std::string, lead::CustomerState> customers;
  absl::flat_hash_map<std::string, LeadRow> rows;
  {
    std::vector<std::string> key_list(keys.begin(), keys.end());
    auto r = db.Query(
        "SELECT payload FROM events WHERE partition_key = ANY($1::text[]) ORDER BY global_seq",
        {absl::StrCat("{", absl::StrJoin(key_list, ","), "}")});
    if (!r.ok()) return fail(r.status());
    v1::Event e;
    for (int i = 0; i < PQntuples(*r); ++i) {
      if (!e.ParseFromArray(PQgetvalue(*r, i, 0), PQgetlength(*r, i, 0))) {
        PQclear(*r);
        return fail(absl::DataLossError("events.payload: not an Event"));
      }
      absl::Status st = e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER
                            ? lead::EvolveCustomer(customers[e.aggregate_id()], e)
                            : lead::EvolveLead(leads[e.aggregate_id()], e);
      if (!st.ok()) {
        PQclear(*r);
        return fail(st);
      }
      ApplyToRow(rows[e.partition_key()], e);
    }
    PQclear(*r);
  }
  const absl::Time now = absl::Now();
  std::string events_copy, commands_copy;
  absl::flat_hash_set<std::string> touched;
  for (int i = 0; i < commands.size(); ++i) {
    const v1::Command& c = commands[i];
    if (!targets[i].ok()) {
      if (counts.first_refusal.empty()) counts.first_refusal = targets[i].status().ToString();
      counts.refused++;
      continue;
    }
    if (!seen.insert(command_ids[i]).second) {
      counts.accepted++;  // a retry: nothing to write
      continue;
    }
    const std::string& lead_id = targets[i]->lead_id;
    const lead::LeadState* survivor = nullptr;
    if (c.has_merge_lead()) {
      auto it = leads.find(c.merge_lead().survivor_lead_id());
      if (it != leads.end() && it->second.exists) survivor = &it->second;
    }
    lead::DecideContext ctx{.now = now, .merge_survivor = survivor, .target = &*targets[i]};
    const std::string customer_id = common::CustomerIdForLead(common::LeadId(lead_id)).value();
    auto events = lead::Decide(leads[lead_id], customers[customer_id], c, ctx);
    if (!events.ok()) {
      if (counts.first_refusal.empty()) counts.first_refusal = events.status().ToString();
      counts.refused++;
      continue;
    }
    counts.accepted++;
    AppendCopyText(commands_copy, command_ids[i]);
    commands_copy += '\t';
    AppendCopyText(commands_copy, lead_id);
    commands_copy += '\n';
    for (v1::Event& e : *events) {
      e.set_event_id(common::NewEventId());
      *e.mutable_recorded_at() = common::ToProto(now);
      absl::Status st = e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER
                            ? lead::EvolveCustomer(customers[e.aggregate_id()], e)
                            : lead::EvolveLead(leads[e.aggregate_id()], e);
      if (!st.ok()) return fail(st);
      ApplyToRow(rows[e.partition_key()], e);
      touched.insert(e.partition_key());
      AppendCopyText(events_copy, e.partition_key());
      events_copy += '\t';
      AppendCopyText(events_copy, e.aggregate_id());
      absl::StrAppend(&events_copy, "\t", e.aggregate_version(), "\t", e.payload_case(), "\t",
                      PgTime(common::FromProto(e.occurred_at())), "\t");
      AppendCopyBytea(events_copy, e.SerializeAsString());
      events_copy += '\n';
      counts.events++;
    }
  }
  if (!events_copy.empty()) {
    absl::Status st = db.Copy(
        "COPY events (partition_key, aggregate_id, aggregate_version, event_type, occurred_at, "
        "payload) FROM STDIN",
        events_copy);
    if (st.ok()) st = db.Copy("COPY commands (command_id, lead_id) FROM STDIN", commands_copy);
    std::string rows_copy;
    for (const auto& id : touched) AppendRow(rows_copy, id, rows[id]);
    if (st.ok()) st = db.Copy("COPY leads_stage FROM STDIN", rows_copy);
    if (st.ok()) {
      st = db.Exec(
          "INSERT INTO leads SELECT * FROM leads_stage ON CONFLICT (lead_id) DO UPDATE SET "
          "version = EXCLUDED.version, owner = EXCLUDED.owner, "
          "source_channel = EXCLUDED.source_channel, captured_at = EXCLUDED.captured_at, "
          "contacted_at = EXCLUDED.contacted_at, qualified_at = EXCLUDED.qualified_at, "
          "presented_at = EXCLUDED.presented_at, proposal_at = EXCLUDED.proposal_at, "
          "converted_at = EXCLUDED.converted_at, rejected_at = EXCLUDED.rejected_at");
    }
    if (!st.ok()) return fail(st);
  }
  return db.Exec("COMMIT");
}

absl::StatusOr<int64_t> PgPeer::Rebuild() {
  Impl& db = *impl_;
  for (const char* sql : {"BEGIN", "TRUNCATE leads",
                          "DECLARE replay NO SCROLL CURSOR FOR "
                          "SELECT payload FROM events ORDER BY global_seq"}) {
    if (absl::Status st = db.Exec(sql); !st.ok()) return st;
  }
  absl::flat_hash_map<std::string, LeadRow> rows;
  int64_t events = 0;
  v1::Event e;
  while (true) {
    auto r = db.Query("FETCH FORWARD 20000 FROM replay", {});
    if (!r.ok()) return r.status();
    const int n = PQntuples(*r);
    for (int i = 0; i < n; ++i) {
      if (!e.ParseFromArray(PQgetvalue(*r, i, 0), PQgetlength(*r, i, 0))) {
        PQclear(*r);
        return absl::DataLossError("events.payload: not an Event");
      }
      ApplyToRow(rows[e.partition_key()], e);
    }
    PQclear(*r);
    events += n;
    if (n == 0) break;
  }
  // Written in chunks, as a replay that does not hold the whole table in one buffer.
  std::string copy;
  for (const auto& [id, row] : rows) {
    AppendRow(copy, id, row);
    if (copy.size() > (8 << 20)) {
      if (absl::Status st = db.Copy("COPY leads FROM STDIN", copy); !st.ok()) return st;
      copy.clear();
    }
  }
  if (!copy.empty()) {
    if (absl::Status st = db.Copy("COPY leads FROM STDIN", copy); !st.ok()) return st;
  }
  if (absl::Status st = db.Exec("CLOSE replay"); !st.ok()) return st;
  if (absl::Status st = db.Exec("COMMIT"); !st.ok()) return st;
  if (absl::Status st = db.Exec("ANALYZE leads"); !st.ok()) return st;
  return events;
}

absl::StatusOr<PgFunnel> PgPeer::CohortFunnel(absl::Time from, absl::Time to) {
  auto r = impl_->Query(
      "SELECT count(*)::bigint, "
      "count(coalesce(contacted_at, qualified_at, presented_at, proposal_at, "
      "converted_at))::bigint, "
      "count(coalesce(qualified_at, presented_at, proposal_at, converted_at))::bigint, "
      "count(converted_at)::bigint, "
      "coalesce(percentile_cont(0.5) WITHIN GROUP "
      "(ORDER BY extract(epoch FROM converted_at - captured_at) / 86400), 0)::float8, "
      "percentile_cont(0.5) WITHIN GROUP "
      "(ORDER BY extract(epoch FROM contacted_at - captured_at)), "
      "percentile_cont(0.5) WITHIN GROUP "
      "(ORDER BY extract(epoch FROM qualified_at - contacted_at)), "
      "percentile_cont(0.9) WITHIN GROUP "
      "(ORDER BY extract(epoch FROM converted_at - captured_at)) "
      "FROM leads WHERE captured_at >= $1 AND captured_at < $2",
      {PgTime(from), PgTime(to)});
  if (!r.ok()) return r.status();
  PgFunnel f;
  f.captured = static_cast<int64_t>(Cell64(*r, 0, 0));
  f.contacted = static_cast<int64_t>(Cell64(*r, 0, 1));
  f.qualified = static_cast<int64_t>(Cell64(*r, 0, 2));
  f.converted = static_cast<int64_t>(Cell64(*r, 0, 3));
  f.median_days_to_convert = CellDouble(*r, 0, 4);
  f.median_to_contact_s = CellDouble(*r, 0, 5);
  f.median_contact_to_qualify_s = CellDouble(*r, 0, 6);
  f.p90_to_convert_s = CellDouble(*r, 0, 7);
  PQclear(*r);
  return f;
}

absl::StatusOr<uint64_t> PgPeer::DatabaseBytes() {
  auto r = impl_->Query("SELECT pg_database_size(current_database())::bigint", {});
  if (!r.ok()) return r.status();
  const uint64_t v = Cell64(*r, 0, 0);
  PQclear(*r);
  return v;
}

}  // namespace leadflow::bench
