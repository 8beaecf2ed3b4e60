// The SQLite RunStore. One writer thread owns the write connection: it takes everything queued,
// applies it in ONE transaction (group commit), commits, then posts all completions to the io
// thread in one handler, so the io thread never waits for the disk and a burst of output costs one
// fsync. Reads use a second connection (WAL lets them run beside the writer) and see committed
// data only.
//
//   caller (any thread) --op--> m_queue --writer: BEGIN; apply all; COMMIT--> post(io, completions)
//
// Output retention is applied while appending: the first output_max_bytes/2 bytes are kept as
// "head" chunks, later bytes as "tail" chunks of which only the newest output_max_bytes/2 are kept
// (older ones are deleted or trimmed in the same transaction), so a 10 GB stream never sits on disk.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "store/run_store_detail.hpp"
#include "saltpeter/run_store.hpp"

namespace saltpeter {
namespace {

// Schema migrations: entry i takes the database from version i to i+1. Never edit a released
// entry; append a new one (and bump nothing else: the current version is the vector's size).
const std::vector<const char*> k_migrations = {
    R"sql(
CREATE TABLE runs(
  instance TEXT PRIMARY KEY,
  job TEXT NOT NULL,
  grp TEXT NOT NULL,
  trigger TEXT NOT NULL,
  scheduled INTEGER,            -- seconds since the epoch
  started INTEGER NOT NULL,     -- microseconds since the epoch
  ended INTEGER,
  status TEXT NOT NULL);
CREATE INDEX runs_job_started ON runs(job, started);
CREATE INDEX runs_unfinished ON runs(started) WHERE ended IS NULL;
CREATE TABLE targets(
  id INTEGER PRIMARY KEY,
  instance TEXT NOT NULL REFERENCES runs(instance) ON DELETE CASCADE,
  machine TEXT NOT NULL,
  state TEXT NOT NULL,
  started INTEGER,
  ended INTEGER,
  retcode INTEGER,
  wrapper_version TEXT NOT NULL,
  last_heartbeat INTEGER,
  notes TEXT NOT NULL,          -- JSON array of strings
  spd_verdict INTEGER NOT NULL,
  last_seq INTEGER,
  output_bytes INTEGER NOT NULL DEFAULT 0,
  head_bytes INTEGER NOT NULL DEFAULT 0,
  tail_bytes INTEGER NOT NULL DEFAULT 0,
  cut_bytes INTEGER NOT NULL DEFAULT 0,
  UNIQUE(instance, machine));
CREATE TABLE output(
  id INTEGER PRIMARY KEY,
  target_id INTEGER NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
  head INTEGER NOT NULL,        -- 1: part of the kept head, 0: part of the rolling tail
  data BLOB NOT NULL);
CREATE INDEX output_target ON output(target_id, head, id);
CREATE TABLE decisions(
  id INTEGER PRIMARY KEY,
  job TEXT NOT NULL,
  kind TEXT NOT NULL,
  at INTEGER NOT NULL,
  scheduled INTEGER,
  detail TEXT NOT NULL);
CREATE INDEX decisions_job ON decisions(job, id);
CREATE INDEX decisions_at ON decisions(at);
CREATE TABLE last_fire(
  job TEXT PRIMARY KEY,
  fire INTEGER NOT NULL);
)sql",
    // 1 -> 2: runs_between (the timeline) finds runs by start and by end time.
    R"sql(
CREATE INDEX runs_started ON runs(started);
CREATE INDEX runs_ended ON runs(ended);
)sql",
};

/// A failed SQLite call inside a write batch or a read: the whole batch or read fails with it.
struct DbError {
    std::string message;
};

std::int64_t micros(SysMicros t) { return t.time_since_epoch().count(); }
SysMicros from_micros(std::int64_t v) { return SysMicros{std::chrono::microseconds{v}}; }
std::int64_t seconds(SysSeconds t) { return t.time_since_epoch().count(); }
SysSeconds from_seconds(std::int64_t v) { return SysSeconds{std::chrono::seconds{v}}; }

/// A prepared statement, reset after each use.
class Stmt {
public:
    Stmt() = default;
    Stmt(sqlite3* db, const char* sql) : m_db(db) {
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m_stmt, nullptr) != SQLITE_OK) {
            throw DbError{std::string("cannot prepare statement: ") + sqlite3_errmsg(db)};
        }
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt(Stmt&& o) noexcept : m_db(o.m_db), m_stmt(o.m_stmt) { o.m_stmt = nullptr; }
    Stmt& operator=(Stmt&& o) noexcept {
        std::swap(m_db, o.m_db);
        std::swap(m_stmt, o.m_stmt);
        return *this;
    }
    ~Stmt() { sqlite3_finalize(m_stmt); }

    Stmt& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(m_stmt, i, v)); }
    Stmt& bind(int i, std::string_view v) {
        return check(sqlite3_bind_text(m_stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    Stmt& bind_blob(int i, std::string_view v) {
        // SQLITE_STATIC: the caller's buffer outlives the step (the op owns it).
        return check(sqlite3_bind_blob64(m_stmt, i, v.data(), v.size(), SQLITE_STATIC));
    }
    Stmt& bind_null(int i) { return check(sqlite3_bind_null(m_stmt, i)); }
    template <typename T>
    Stmt& bind_opt(int i, const std::optional<T>& v) {
        if (v) return bind(i, static_cast<std::int64_t>(*v));
        return bind_null(i);
    }

    /// Steps once: true if a row is available.
    bool step() {
        const int rc = sqlite3_step(m_stmt);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw DbError{sqlite3_errmsg(m_db)};
    }
    /// Runs a statement that returns no rows, then resets it.
    void run() {
        struct Reset {
            Stmt& s;
            ~Reset() { s.reset(); }
        } reset{*this};
        step();
    }
    void reset() {
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
    }

    bool is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
    std::int64_t i64(int col) const { return sqlite3_column_int64(m_stmt, col); }
    std::optional<std::int64_t> opt_i64(int col) const {
        if (is_null(col)) return std::nullopt;
        return i64(col);
    }
    std::string text(int col) const {
        const auto* p = sqlite3_column_blob(m_stmt, col);
        const int n = sqlite3_column_bytes(m_stmt, col);
        return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
    }

private:
    Stmt& check(int rc) {
        if (rc != SQLITE_OK) throw DbError{std::string("cannot bind: ") + sqlite3_errmsg(m_db)};
        return *this;
    }
    sqlite3* m_db = nullptr;
    sqlite3_stmt* m_stmt = nullptr;
};

/// Resets a statement when a read leaves scope, also on an exception.
struct ResetGuard {
    Stmt& stmt;
    ~ResetGuard() { stmt.reset(); }
};

void exec(sqlite3* db, const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
        std::string text = msg != nullptr ? msg : sqlite3_errmsg(db);
        sqlite3_free(msg);
        throw DbError{std::move(text)};
    }
}

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

std::string notes_to_json(const std::vector<std::string>& notes) {
    // Notes come from spd; a stray invalid UTF-8 byte must not make the write throw.
    return nlohmann::json(notes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> notes_from_json(const std::string& text) {
    std::vector<std::string> notes;
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_array()) {
        for (const auto& n : j) {
            if (n.is_string()) notes.push_back(n.get<std::string>());
        }
    }
    return notes;
}

Result<DbPtr> open_connection(const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOFOLLOW, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) {
        return Error{"state database " + path + ": cannot open: " +
                         (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
                     "state_db"};
    }
    sqlite3_extended_result_codes(raw, 1);
    // Another process (a backup with the sqlite3 shell) may hold the lock for a moment.
    sqlite3_busy_timeout(raw, 5000);
    return db;
}

/// Creates the file 0600 if missing without following a symlink, and says clearly what is wrong
/// with the path or its directory.
Status prepare_file(const std::string& path) {
    if (path.empty()) return Error{"state database: empty path", "state_db"};
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        return Error{"state database " + path + ": directory " + dir + ": " + std::strerror(errno), "state_db"};
    }
    if (!S_ISDIR(st.st_mode)) {
        return Error{"state database " + path + ": " + dir + " is not a directory", "state_db"};
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        const int err = errno;
        std::string why = err == ELOOP ? "is a symbolic link (refused)" : std::strerror(err);
        return Error{"state database " + path + ": cannot open for writing: " + why, "state_db"};
    }
    const int rc = ::fstat(fd, &st);
    ::close(fd);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        return Error{"state database " + path + ": not a regular file", "state_db"};
    }
    // SQLite creates -wal and -shm beside it and needs the directory writable for that.
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        return Error{"state database " + path + ": directory " + dir + " is not writable: " + std::strerror(errno),
                     "state_db"};
    }
    return Ok{};
}

class SqliteRunStore final : public RunStore {
public:
    struct Op {
        const char* what;
        std::function<Status()> apply;  ///< runs on the writer thread inside the batch transaction
        Completion done;
        std::uint64_t gate_bytes = 0;
        std::string target = {};  ///< instance + '\n' + machine for target writes (see clear_target_error)
    };

    SqliteRunStore(boost::asio::io_context& io, std::string path, const RunStoreOptions& options, DbPtr writer,
                   DbPtr reader)
        : m_io(io),
          m_path(std::move(path)),
          m_options(options),
          m_gate(std::make_shared<detail::OutputGate>(io, options.queue_max_bytes)),
          m_writer(std::move(writer)),
          m_reader(std::move(reader)) {
        prepare_statements();
        m_thread = std::thread([this] { writer_loop(); });
    }

    ~SqliteRunStore() override {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_cv.notify_one();
        m_thread.join();
        // Members go in reverse order: statements before connections; closing the last
        // connection checkpoints the WAL into the database file.
    }

    void put_run(const StoredRun& run, Completion done) override {
        enqueue({"put_run", [this, run] { return apply_put_run(run); }, std::move(done)});
    }

    void finish_run(const std::string& instance, SysMicros ended, RunStatus status, Completion done) override {
        enqueue({"finish_run",
                 [this, instance, ended, status]() -> Status {
                     m_w.finish_run.bind(1, micros(ended)).bind(2, to_string(status)).bind(3, instance).run();
                     if (sqlite3_changes(m_writer.get()) == 0) {
                         return Error{"finish_run: unknown run " + instance, "instance"};
                     }
                     return Ok{};
                 },
                 std::move(done)});
    }

    void put_target(const StoredTarget& target, Completion done) override {
        enqueue({"put_target", [this, target] { return apply_put_target(target); }, std::move(done), 0,
                 target.instance + '\n' + target.machine});
    }

    bool try_append_output(const std::string& instance, const std::string& machine, std::optional<std::int64_t> seq,
                           std::string data, Completion done) override {
        const std::uint64_t n = data.size();
        if (!m_gate->try_reserve(n)) return false;
        enqueue({"append_output",
                 [this, instance, machine, seq, data = std::move(data)] {
                     return apply_append(instance, machine, seq, data);
                 },
                 std::move(done), n, instance + '\n' + machine});
        return true;
    }

    void clear_target_error(const std::string& instance, const std::string& machine, Completion done) override {
        enqueue({"clear_target_error",
                 [this, key = instance + '\n' + machine]() -> Status {
                     m_failed_targets.erase(key);  // writer thread only
                     return Ok{};
                 },
                 std::move(done)});
    }

    void when_writable(std::function<void()> ready) override { m_gate->when_writable(std::move(ready)); }

    void record_decision(const SchedulerDecision& d, Completion done) override {
        enqueue({"record_decision",
                 [this, d]() -> Status {
                     m_w.insert_decision.bind(1, d.job)
                         .bind(2, to_string(d.kind))
                         .bind(3, micros(d.at))
                         .bind(5, d.detail);
                     if (d.scheduled) m_w.insert_decision.bind(4, seconds(*d.scheduled));
                     m_w.insert_decision.run();
                     return Ok{};
                 },
                 std::move(done)});
    }

    void set_last_fire(const std::string& job, SysSeconds fire, Completion done) override {
        enqueue({"set_last_fire",
                 [this, job, fire]() -> Status {
                     m_w.set_last_fire.bind(1, job).bind(2, seconds(fire)).run();
                     return Ok{};
                 },
                 std::move(done)});
    }

    void prune(SysMicros now, Completion done) override {
        enqueue({"prune", [this, now] { return apply_prune(now); }, std::move(done)});
    }

    void flush(Completion done) override {
        enqueue({"flush", []() -> Status { return Ok{}; }, std::move(done)});
    }

    std::uint64_t queued_bytes() const override { return m_gate->queued(); }

    Result<std::vector<StoredRun>> unfinished_runs() override {
        return read([&] {
            std::vector<StoredRun> out;
            ResetGuard g{m_r.unfinished};
            while (m_r.unfinished.step()) out.push_back(run_from(m_r.unfinished));
            for (auto& r : out) r.targets = targets_of(r.instance);
            return out;
        });
    }

    Result<std::map<std::string, SysSeconds>> last_fire_times() override {
        return read([&] {
            std::map<std::string, SysSeconds> out;
            ResetGuard g{m_r.last_fires};
            while (m_r.last_fires.step()) out[m_r.last_fires.text(0)] = from_seconds(m_r.last_fires.i64(1));
            return out;
        });
    }

    Result<std::optional<StoredRun>> run(const std::string& instance) override {
        return read([&] {
            std::optional<StoredRun> out;
            {
                ResetGuard g{m_r.run};
                m_r.run.bind(1, instance);
                if (m_r.run.step()) out = run_from(m_r.run);
            }
            if (out) out->targets = targets_of(instance);
            return out;
        });
    }

    Result<std::vector<StoredRun>> runs(const std::string& job, std::size_t limit) override {
        return read([&] {
            std::vector<StoredRun> out;
            {
                ResetGuard g{m_r.runs_of_job};
                m_r.runs_of_job.bind(1, job).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
                while (m_r.runs_of_job.step()) out.push_back(run_from(m_r.runs_of_job));
            }
            for (auto& r : out) r.targets = targets_of(r.instance);
            return out;
        });
    }

    Result<std::vector<StoredRun>> runs_between(SysMicros start, SysMicros end, std::size_t limit) override {
        if (start > end) return std::vector<StoredRun>{};
        return read([&] {
            std::vector<StoredRun> out;
            {
                ResetGuard g{m_r.runs_between};
                m_r.runs_between.bind(1, micros(start))
                    .bind(2, micros(end))
                    .bind(3, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
                while (m_r.runs_between.step()) out.push_back(run_from(m_r.runs_between));
            }
            for (auto& r : out) r.targets = targets_of(r.instance);
            return out;
        });
    }

    Result<std::string> output(const std::string& instance, const std::string& machine) override {
        auto result = read([&]() -> std::optional<std::string> {
            std::int64_t id = 0;
            std::uint64_t cut = 0;
            {
                ResetGuard g{m_r.target_id};
                m_r.target_id.bind(1, instance).bind(2, machine);
                if (!m_r.target_id.step()) return std::nullopt;
                id = m_r.target_id.i64(0);
                cut = static_cast<std::uint64_t>(m_r.target_id.i64(1));
            }
            std::string out;
            ResetGuard g{m_r.output};
            m_r.output.bind(1, id);
            bool in_head = true;
            while (m_r.output.step()) {
                if (in_head && m_r.output.i64(0) == 0) {
                    in_head = false;
                    if (cut > 0) out += output_cut_marker(cut);
                }
                out += m_r.output.text(1);
            }
            if (in_head && cut > 0) out += output_cut_marker(cut);
            return out;
        });
        if (!result) return result.error();
        if (!*result) return Error{"output: unknown target " + instance + " machine " + machine, "machine"};
        return std::move(**result);
    }

    Result<std::vector<SchedulerDecision>> decisions(const std::string& job, std::size_t limit) override {
        return read([&] {
            std::vector<SchedulerDecision> out;
            ResetGuard g{m_r.decisions};
            m_r.decisions.bind(1, job).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
            while (m_r.decisions.step()) {
                SchedulerDecision d;
                d.job = m_r.decisions.text(0);
                d.kind = decision_kind_from_string(m_r.decisions.text(1)).value_or(DecisionKind::misfire);
                d.at = from_micros(m_r.decisions.i64(2));
                if (auto s = m_r.decisions.opt_i64(3)) d.scheduled = from_seconds(*s);
                d.detail = m_r.decisions.text(4);
                out.push_back(std::move(d));
            }
            return out;
        });
    }

private:
    struct WriterStatements {
        Stmt begin, commit, rollback;
        Stmt put_run, finish_run, run_exists, put_target, insert_decision, set_last_fire;
        Stmt target_for_append, insert_chunk, oldest_tail, delete_chunk, trim_chunk, delete_tail, update_output;
        Stmt prune_days, prune_decisions_days, prune_runs, prune_decisions;
    };
    struct ReaderStatements {
        Stmt begin, commit;
        Stmt unfinished, last_fires, run, runs_of_job, runs_between, targets, target_id, output, decisions;
    };

    void prepare_statements() {
        sqlite3* w = m_writer.get();
        m_w.begin = Stmt(w, "BEGIN IMMEDIATE");
        m_w.commit = Stmt(w, "COMMIT");
        m_w.rollback = Stmt(w, "ROLLBACK");
        m_w.put_run = Stmt(w,
            "INSERT INTO runs(instance, job, grp, trigger, scheduled, started, ended, status) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(instance) DO UPDATE SET job = excluded.job, "
            "grp = excluded.grp, trigger = excluded.trigger, scheduled = excluded.scheduled, "
            "started = excluded.started, ended = excluded.ended, status = excluded.status");
        m_w.finish_run = Stmt(w, "UPDATE runs SET ended = ?1, status = ?2 WHERE instance = ?3");
        m_w.run_exists = Stmt(w, "SELECT 1 FROM runs WHERE instance = ?1");
        m_w.put_target = Stmt(w,
            "INSERT INTO targets(instance, machine, state, started, ended, retcode, wrapper_version, "
            "last_heartbeat, notes, spd_verdict) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
            "ON CONFLICT(instance, machine) DO UPDATE SET state = excluded.state, started = excluded.started, "
            "ended = excluded.ended, retcode = excluded.retcode, wrapper_version = excluded.wrapper_version, "
            "last_heartbeat = excluded.last_heartbeat, notes = excluded.notes, spd_verdict = excluded.spd_verdict");
        m_w.insert_decision =
            Stmt(w, "INSERT INTO decisions(job, kind, at, scheduled, detail) VALUES(?1, ?2, ?3, ?4, ?5)");
        m_w.set_last_fire = Stmt(w,
            "INSERT INTO last_fire(job, fire) VALUES(?1, ?2) ON CONFLICT(job) DO UPDATE SET fire = excluded.fire");
        m_w.target_for_append = Stmt(w,
            "SELECT id, last_seq, head_bytes, tail_bytes, cut_bytes FROM targets WHERE instance = ?1 AND machine = ?2");
        m_w.insert_chunk = Stmt(w, "INSERT INTO output(target_id, head, data) VALUES(?1, ?2, ?3)");
        m_w.oldest_tail =
            Stmt(w, "SELECT id, length(data) FROM output WHERE target_id = ?1 AND head = 0 ORDER BY id LIMIT 1");
        m_w.delete_chunk = Stmt(w, "DELETE FROM output WHERE id = ?1");
        m_w.trim_chunk = Stmt(w, "UPDATE output SET data = substr(data, ?2 + 1) WHERE id = ?1");
        m_w.delete_tail = Stmt(w, "DELETE FROM output WHERE target_id = ?1 AND head = 0");
        m_w.update_output = Stmt(w,
            "UPDATE targets SET last_seq = coalesce(?2, last_seq), output_bytes = output_bytes + ?3, "
            "head_bytes = ?4, tail_bytes = ?5, cut_bytes = ?6 WHERE id = ?1");
        m_w.prune_days = Stmt(w, "DELETE FROM runs WHERE ended IS NOT NULL AND ended < ?1");
        m_w.prune_decisions_days = Stmt(w, "DELETE FROM decisions WHERE at < ?1");
        m_w.prune_runs = Stmt(w,
            "DELETE FROM runs WHERE instance IN (SELECT instance FROM (SELECT instance, row_number() OVER "
            "(PARTITION BY job ORDER BY started DESC, instance DESC) AS n FROM runs WHERE ended IS NOT NULL) "
            "WHERE n > ?1)");
        m_w.prune_decisions = Stmt(w,
            "DELETE FROM decisions WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
            "(PARTITION BY job ORDER BY id DESC) AS n FROM decisions) WHERE n > ?1)");

        sqlite3* r = m_reader.get();
        const char* run_cols = "SELECT instance, job, grp, trigger, scheduled, started, ended, status FROM runs ";
        m_r.begin = Stmt(r, "BEGIN");
        m_r.commit = Stmt(r, "COMMIT");
        m_r.unfinished = Stmt(r, (std::string(run_cols) + "WHERE ended IS NULL ORDER BY started, instance").c_str());
        m_r.last_fires = Stmt(r, "SELECT job, fire FROM last_fire ORDER BY job");
        m_r.run = Stmt(r, (std::string(run_cols) + "WHERE instance = ?1").c_str());
        m_r.runs_of_job = Stmt(r, (std::string(run_cols) +
                                   "WHERE job = ?1 ORDER BY started DESC, instance DESC LIMIT ?2").c_str());
        // Three disjoint parts, each served by an index: started within the range; started before
        // it and ended within or after it; started before it and not ended.
        m_r.runs_between = Stmt(r, (std::string(run_cols) +
                                    "WHERE instance IN (SELECT instance FROM runs WHERE started BETWEEN ?1 AND ?2 "
                                    "UNION ALL SELECT instance FROM runs WHERE ended >= ?1 AND started < ?1 AND started <= ?2 "
                                    "UNION ALL SELECT instance FROM runs WHERE ended IS NULL AND started < ?1 AND started <= ?2) "
                                    "ORDER BY started DESC, instance DESC LIMIT ?3").c_str());
        m_r.targets = Stmt(r,
            "SELECT instance, machine, state, started, ended, retcode, wrapper_version, last_heartbeat, notes, "
            "spd_verdict, last_seq, output_bytes, cut_bytes FROM targets WHERE instance = ?1 ORDER BY machine");
        m_r.target_id = Stmt(r, "SELECT id, cut_bytes FROM targets WHERE instance = ?1 AND machine = ?2");
        m_r.output = Stmt(r, "SELECT head, data FROM output WHERE target_id = ?1 ORDER BY head DESC, id");
        m_r.decisions = Stmt(r,
            "SELECT job, kind, at, scheduled, detail FROM decisions WHERE job = ?1 ORDER BY id DESC LIMIT ?2");
    }

    // ---- writer thread ----

    void enqueue(Op op) {
        {
            std::lock_guard lock(m_mutex);
            m_queue.push_back(std::move(op));
        }
        m_cv.notify_one();
    }

    void writer_loop() {
        std::vector<Op> batch;
        for (;;) {
            {
                std::unique_lock lock(m_mutex);
                m_cv.wait(lock, [&] { return m_stop || !m_queue.empty(); });
                if (m_queue.empty()) return;  // stopping, and everything is committed
                batch.assign(std::make_move_iterator(m_queue.begin()), std::make_move_iterator(m_queue.end()));
                m_queue.clear();
            }
            std::vector<Status> statuses = commit_batch(batch);
            struct Done {
                Completion done;
                Status status;
                const char* what;
            };
            std::vector<Done> dones;
            dones.reserve(batch.size());
            std::uint64_t bytes = 0;
            for (std::size_t i = 0; i < batch.size(); ++i) {
                bytes += batch[i].gate_bytes;
                dones.push_back({std::move(batch[i].done), std::move(statuses[i]), batch[i].what});
            }
            batch.clear();
            boost::asio::post(m_io, [gate = m_gate, dones = std::move(dones), bytes] {
                for (const auto& d : dones) detail::call_completion(d.done, d.status, d.what);
                if (bytes > 0) gate->release(bytes);
            });
        }
    }

    /// One transaction for the whole batch. An op's own Error (unknown run...) leaves the database
    /// untouched and fails that op only; an SQLite failure rolls the batch back and fails all of it.
    std::vector<Status> commit_batch(std::vector<Op>& batch) {
        std::vector<Status> statuses;
        statuses.reserve(batch.size());
        try {
            m_w.begin.run();
            try {
                for (auto& op : batch) {
                    if (!op.target.empty() && m_failed_targets.count(op.target) != 0) {
                        statuses.push_back(Error{"state database " + m_path + ": " + op.what +
                                                     " refused: an earlier write for this target failed",
                                                 "state_db"});
                        continue;
                    }
                    statuses.push_back(op.apply());
                    if (!statuses.back() && !op.target.empty()) m_failed_targets.insert(op.target);
                }
                m_w.commit.run();
            } catch (const DbError&) {
                if (!sqlite3_get_autocommit(m_writer.get())) {
                    try {
                        m_w.rollback.run();
                    } catch (const DbError&) {  // nothing more to do: the error below says it all
                    }
                }
                throw;
            }
        } catch (const DbError& e) {
            const Error error{"state database " + m_path + ": write failed: " + e.message, "state_db"};
            statuses.assign(batch.size(), Status(error));
            fail_targets(batch);
        } catch (const std::exception& e) {
            // A bug (bad_alloc, a json throw): still fail the batch instead of killing spd.
            if (!sqlite3_get_autocommit(m_writer.get())) sqlite3_exec(m_writer.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            const Error error{"state database " + m_path + ": write failed: " + e.what(), "state_db"};
            statuses.assign(batch.size(), Status(error));
            fail_targets(batch);
        }
        return statuses;
    }

    void fail_targets(const std::vector<Op>& batch) {
        for (const auto& op : batch) {
            if (!op.target.empty()) m_failed_targets.insert(op.target);
        }
    }

    Status apply_put_run(const StoredRun& run) {
        m_w.put_run.bind(1, run.instance)
            .bind(2, run.job)
            .bind(3, run.group)
            .bind(4, to_string(run.trigger))
            .bind(6, micros(run.started))
            .bind(8, to_string(run.status));
        if (run.scheduled) m_w.put_run.bind(5, seconds(*run.scheduled));
        if (run.ended) m_w.put_run.bind(7, micros(*run.ended));
        m_w.put_run.run();
        return Ok{};
    }

    Status apply_put_target(const StoredTarget& t) {
        bool exists = false;
        {
            ResetGuard g{m_w.run_exists};
            m_w.run_exists.bind(1, t.instance);
            exists = m_w.run_exists.step();
        }
        if (!exists) return Error{"put_target: unknown run " + t.instance + " (machine " + t.machine + ")", "instance"};
        auto& s = m_w.put_target;
        s.bind(1, t.instance).bind(2, t.machine).bind(3, to_string(t.state));
        if (t.started) s.bind(4, micros(*t.started));
        if (t.ended) s.bind(5, micros(*t.ended));
        s.bind_opt(6, t.retcode).bind(7, t.wrapper_version);
        if (t.last_heartbeat) s.bind(8, micros(*t.last_heartbeat));
        s.bind(9, notes_to_json(t.notes)).bind(10, std::int64_t{t.spd_verdict ? 1 : 0});
        s.run();
        return Ok{};
    }

    Status apply_append(const std::string& instance, const std::string& machine, std::optional<std::int64_t> seq,
                        std::string_view data) {
        std::int64_t id = 0;
        std::optional<std::int64_t> last_seq;
        std::uint64_t head = 0, tail = 0, cut = 0;
        {
            auto& s = m_w.target_for_append;
            ResetGuard g{s};
            s.bind(1, instance).bind(2, machine);
            if (!s.step()) return Error{"append_output: unknown target " + instance + " machine " + machine, "machine"};
            id = s.i64(0);
            last_seq = s.opt_i64(1);
            head = static_cast<std::uint64_t>(s.i64(2));
            tail = static_cast<std::uint64_t>(s.i64(3));
            cut = static_cast<std::uint64_t>(s.i64(4));
        }
        if (seq && last_seq && *seq <= *last_seq) return Ok{};  // a resend: already stored
        const std::uint64_t n = data.size();
        const std::uint64_t max = m_options.output_max_bytes;
        if (max == 0) {
            insert_chunk(id, true, data);
            head += n;
        } else {
            const std::uint64_t head_limit = detail::head_limit(max);
            const std::uint64_t tail_limit = detail::tail_limit(max);
            if (head < head_limit) {
                const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(head_limit - head, data.size()));
                insert_chunk(id, true, data.substr(0, take));
                head += take;
                data.remove_prefix(take);
            }
            if (data.size() >= tail_limit) {
                // This chunk alone fills the tail: drop the old tail and the chunk's own front.
                m_w.delete_tail.bind(1, id).run();
                cut += tail + (data.size() - tail_limit);
                data.remove_prefix(static_cast<std::size_t>(data.size() - tail_limit));
                tail = 0;
            }
            if (!data.empty()) {
                insert_chunk(id, false, data);
                tail += data.size();
            }
            while (tail > tail_limit) {
                std::int64_t chunk = 0;
                std::uint64_t len = 0;
                {
                    ResetGuard g{m_w.oldest_tail};
                    m_w.oldest_tail.bind(1, id);
                    if (!m_w.oldest_tail.step()) throw DbError{"tail bookkeeping of " + instance + "/" + machine + " is off"};
                    chunk = m_w.oldest_tail.i64(0);
                    len = static_cast<std::uint64_t>(m_w.oldest_tail.i64(1));
                }
                const std::uint64_t excess = tail - tail_limit;
                if (len <= excess) {
                    m_w.delete_chunk.bind(1, chunk).run();
                    tail -= len;
                    cut += len;
                } else {
                    m_w.trim_chunk.bind(1, chunk).bind(2, static_cast<std::int64_t>(excess)).run();
                    tail -= excess;
                    cut += excess;
                }
            }
        }
        auto& u = m_w.update_output;
        u.bind(1, id).bind_opt(2, seq).bind(3, static_cast<std::int64_t>(n));
        u.bind(4, static_cast<std::int64_t>(head)).bind(5, static_cast<std::int64_t>(tail));
        u.bind(6, static_cast<std::int64_t>(cut)).run();
        return Ok{};
    }

    void insert_chunk(std::int64_t target_id, bool head, std::string_view data) {
        if (data.empty()) return;  // an empty blob would bind as NULL
        m_w.insert_chunk.bind(1, target_id).bind(2, std::int64_t{head ? 1 : 0}).bind_blob(3, data).run();
    }

    Status apply_prune(SysMicros now) {
        if (m_options.history_max_days > 0) {
            const SysMicros cutoff = now - std::chrono::hours(24) * m_options.history_max_days;
            m_w.prune_days.bind(1, micros(cutoff)).run();
            m_w.prune_decisions_days.bind(1, micros(cutoff)).run();
        }
        if (m_options.history_max_runs > 0) {
            m_w.prune_runs.bind(1, std::int64_t{m_options.history_max_runs}).run();
            m_w.prune_decisions.bind(1, std::int64_t{m_options.history_max_runs}).run();
        }
        return Ok{};
    }

    // ---- reads (any thread, serialised on the read connection) ----

    template <typename F>
    auto read(F&& f) -> Result<decltype(f())> {
        std::lock_guard lock(m_read_mutex);
        try {
            m_r.begin.run();  // one snapshot for the run and its targets
            try {
                auto value = f();
                m_r.commit.run();
                return value;
            } catch (...) {
                if (!sqlite3_get_autocommit(m_reader.get())) sqlite3_exec(m_reader.get(), "ROLLBACK", nullptr, nullptr, nullptr);
                throw;
            }
        } catch (const DbError& e) {
            return Error{"state database " + m_path + ": read failed: " + e.message, "state_db"};
        }
    }

    static StoredRun run_from(const Stmt& s) {
        StoredRun r;
        r.instance = s.text(0);
        r.job = s.text(1);
        r.group = s.text(2);
        r.trigger = trigger_from_string(s.text(3)).value_or(Trigger::schedule);
        if (auto v = s.opt_i64(4)) r.scheduled = from_seconds(*v);
        r.started = from_micros(s.i64(5));
        if (auto v = s.opt_i64(6)) r.ended = from_micros(*v);
        r.status = run_status_from_string(s.text(7)).value_or(RunStatus::running);
        return r;
    }

    std::vector<StoredTarget> targets_of(const std::string& instance) {
        std::vector<StoredTarget> out;
        auto& s = m_r.targets;
        ResetGuard g{s};
        s.bind(1, instance);
        while (s.step()) {
            StoredTarget t;
            t.instance = s.text(0);
            t.machine = s.text(1);
            t.state = target_state_from_string(s.text(2)).value_or(TargetState::pending);
            if (auto v = s.opt_i64(3)) t.started = from_micros(*v);
            if (auto v = s.opt_i64(4)) t.ended = from_micros(*v);
            if (auto v = s.opt_i64(5)) t.retcode = static_cast<int>(*v);
            t.wrapper_version = s.text(6);
            if (auto v = s.opt_i64(7)) t.last_heartbeat = from_micros(*v);
            t.notes = notes_from_json(s.text(8));
            t.spd_verdict = s.i64(9) != 0;
            t.last_seq = s.opt_i64(10);
            t.output_bytes = static_cast<std::uint64_t>(s.i64(11));
            t.cut_bytes = static_cast<std::uint64_t>(s.i64(12));
            out.push_back(std::move(t));
        }
        return out;
    }

    boost::asio::io_context& m_io;
    const std::string m_path;
    const RunStoreOptions m_options;
    std::shared_ptr<detail::OutputGate> m_gate;
    DbPtr m_writer;
    DbPtr m_reader;
    WriterStatements m_w;  ///< writer thread only (after construction)
    ReaderStatements m_r;  ///< under m_read_mutex
    std::mutex m_read_mutex;

    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Op> m_queue;
    bool m_stop = false;
    std::set<std::string> m_failed_targets;  ///< writer thread only: targets whose writes are refused
    std::thread m_thread;
};

/// Brings the schema to the current version inside one transaction.
Status migrate(sqlite3* db, const std::string& path) {
    try {
        exec(db, "BEGIN IMMEDIATE");
        try {
            Stmt has_version(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'");
            has_version.step();
            const bool versioned = has_version.i64(0) > 0;
            std::int64_t version = 0;
            if (versioned) {
                Stmt v(db, "SELECT version FROM schema_version");
                if (v.step()) version = v.i64(0);
            } else {
                Stmt tables(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
                tables.step();
                if (tables.i64(0) > 0) {
                    exec(db, "ROLLBACK");
                    return Error{"state database " + path +
                                     ": is an SQLite database but not saltpeter's (no schema_version table); "
                                     "refusing to touch it",
                                 "state_db"};
                }
                exec(db, "CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES(0)");
            }
            const auto current = static_cast<std::int64_t>(k_migrations.size());
            if (version > current) {
                exec(db, "ROLLBACK");
                return Error{"state database " + path + ": schema version " + std::to_string(version) +
                                 " was written by a newer saltpeter (this one knows up to " + std::to_string(current) +
                                 ")",
                             "state_db"};
            }
            for (auto v = version; v < current; ++v) exec(db, k_migrations[static_cast<std::size_t>(v)]);
            Stmt set(db, "UPDATE schema_version SET version = ?1");
            set.bind(1, current).run();
            exec(db, "COMMIT");
        } catch (const DbError&) {
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    } catch (const DbError& e) {
        return Error{"state database " + path + ": cannot set up the schema: " + e.message, "state_db"};
    }
    return Ok{};
}

Status configure_writer(sqlite3* db, const std::string& path, bool sync_full) {
    try {
        // A garbage file fails here first ("file is not a database").
        Stmt mode(db, "PRAGMA journal_mode = WAL");
        if (!mode.step() || mode.text(0) != "wal") {
            return Error{"state database " + path + ": cannot switch to WAL mode (got '" + mode.text(0) + "')",
                         "state_db"};
        }
    } catch (const DbError& e) {
        const bool full = e.message.find("disk is full") != std::string::npos;
        return Error{"state database " + path + ": " + e.message +
                         (full ? " (no space left on its disk)" : " (corrupt, or not an SQLite file?)"),
                     "state_db"};
    }
    try {
        Stmt check(db, "PRAGMA quick_check");
        std::string problems;
        while (check.step()) {
            const std::string line = check.text(0);
            if (line == "ok") break;
            if (!problems.empty()) problems += "; ";
            problems += line;
        }
        if (!problems.empty()) {
            return Error{"state database " + path + " is corrupt (PRAGMA quick_check: " + problems +
                             "); restore a backup or move the file away",
                         "state_db"};
        }
        // FULL: in WAL mode NORMAL survives a crash of spd but may lose the last commits on power
        // loss, yet a commit is what tells the wrapper it may forget its result. Group commit makes
        // the fsync per batch cheap (see bench/store); NORMAL stays available for embedders.
        exec(db, sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        exec(db, "PRAGMA foreign_keys = ON");
    } catch (const DbError& e) {
        return Error{"state database " + path + " is corrupt: " + e.message, "state_db"};
    }
    return Ok{};
}

}  // namespace

Result<std::unique_ptr<RunStore>> make_sqlite_run_store(boost::asio::io_context& io, const std::string& path,
                                                         const RunStoreOptions& options) {
    if (auto st = prepare_file(path); !st) return st.error();
    auto writer = open_connection(path, SQLITE_OPEN_READWRITE);
    if (!writer) return writer.error();
    if (auto st = configure_writer(writer->get(), path, options.sync_full); !st) return st.error();
    if (auto st = migrate(writer->get(), path); !st) return st.error();
    auto reader = open_connection(path, SQLITE_OPEN_READWRITE);
    if (!reader) return reader.error();
    try {
        exec(reader->get(), "PRAGMA query_only = ON");
        return std::unique_ptr<RunStore>(
            std::make_unique<SqliteRunStore>(io, path, options, std::move(*writer), std::move(*reader)));
    } catch (const DbError& e) {
        return Error{"state database " + path + ": " + e.message, "state_db"};
    }
}

}  // namespace saltpeter
