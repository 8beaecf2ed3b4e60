// The `saltpeter` Python module: the pure parts of libsaltpeter (schedules, configuration,
// exit codes, crontab import) for scripts and tests, and ApiClient to drive a running spd.
// Errors a user can cause raise ValueError (or OSError for files) with the same message spctl
// prints; datetimes go in and out aware.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/api_client.hpp"
#include "saltpeter/config.hpp"
#include "saltpeter/cron_expression.hpp"
#include "saltpeter/crontab_import.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/time_zone.hpp"
#include "saltpeter/version.hpp"

namespace py = pybind11;
using namespace saltpeter;

namespace {

[[noreturn]] void raise_value_error(const std::string& message) { throw py::value_error(message); }

TimeZone zone_or_raise(const std::string& name) {
    auto zone = TimeZone::locate(name);
    if (!zone) raise_value_error(zone.error().message);
    return *zone;
}

/// An aware datetime -> whole seconds (floor); a naive one is refused (its zone is unknown).
SysSeconds to_sys_seconds(const py::object& dt) {
    auto datetime = py::module_::import("datetime");
    if (!py::isinstance(dt, datetime.attr("datetime"))) {
        throw py::type_error("expected a datetime.datetime, got " + std::string(py::str(py::type::of(dt).attr("__name__"))));
    }
    if (dt.attr("utcoffset")().is_none()) {
        raise_value_error("naive datetime " + std::string(py::str(dt.attr("isoformat")())) +
                          ": give it a tzinfo (e.g. datetime.timezone.utc or zoneinfo.ZoneInfo)");
    }
    const double ts = dt.attr("timestamp")().cast<double>();
    return SysSeconds(std::chrono::seconds(static_cast<std::int64_t>(std::floor(ts))));
}

/// Whole seconds -> an aware datetime with the zone's offset at that instant (a fixed-offset
/// tzinfo named by the abbreviation, e.g. CEST), so isoformat() equals spctl's output.
py::object to_datetime(SysSeconds t, const TimeZone& zone) {
    auto datetime = py::module_::import("datetime");
    const auto span = zone.span_at(t);
    auto offset = datetime.attr("timedelta")(py::arg("seconds") = span.offset.count());
    auto tz = datetime.attr("timezone")(offset, zone.abbreviation_at(t));
    return datetime.attr("datetime").attr("fromtimestamp")(t.time_since_epoch().count(), tz);
}

/// `tz` as a str, or anything with a `key` (zoneinfo.ZoneInfo); None = UTC.
std::string zone_name(const py::object& tz) {
    if (tz.is_none()) return "UTC";
    if (py::isinstance<py::str>(tz)) return tz.cast<std::string>();
    if (py::hasattr(tz, "key")) return tz.attr("key").cast<std::string>();
    throw py::type_error("tz: expected an IANA zone name (str) or a zoneinfo.ZoneInfo");
}

/// Iterator over the fire times after a start instant.
class FireTimes {
public:
    FireTimes(CronExpression expr, TimeZone zone, SysSeconds from)
        : m_expr(std::move(expr)), m_zone(std::move(zone)), m_t(from) {}
    py::object next() {
        if (m_done) throw py::stop_iteration();
        auto n = m_expr.next_after(m_t, m_zone);
        if (!n) {
            m_done = true;
            throw py::stop_iteration();
        }
        m_t = *n;
        return to_datetime(*n, m_zone);
    }

private:
    CronExpression m_expr;
    TimeZone m_zone;
    SysSeconds m_t;
    bool m_done = false;
};

std::string severity_name(Problem::Severity s) { return s == Problem::Severity::error ? "error" : "warning"; }

std::vector<Problem> validate_loaded(const LoadResult& loaded, const py::object& now) {
    auto problems = loaded.problems;
    const SysSeconds at = now.is_none()
                              ? std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now())
                              : to_sys_seconds(now);
    for (auto& p : validate_schedules(loaded.config, at)) problems.push_back(std::move(p));
    return problems;
}

LoadResult load_dir_or_raise(const std::string& dir) {
    auto loaded = load_config_dir(dir);
    if (!loaded) {
        std::error_code ec;
        if (!std::filesystem::exists(dir, ec)) {
            PyErr_SetString(PyExc_FileNotFoundError, loaded.error().message.c_str());
        } else {
            PyErr_SetString(PyExc_OSError, loaded.error().message.c_str());
        }
        throw py::error_already_set();
    }
    return std::move(*loaded);
}

std::string outcome_name(Outcome o) {
    switch (o) {
        case Outcome::success: return "success";
        case Outcome::command_failed: return "command_failed";
        case Outcome::timeout: return "timeout";
        case Outcome::permission_denied: return "permission_denied";
        case Outcome::not_found: return "not_found";
        case Outcome::killed: return "killed";
        case Outcome::heartbeat_lost: return "heartbeat_lost";
        case Outcome::never_started: return "never_started";
        case Outcome::lock_held: return "lock_held";
        case Outcome::no_response: return "no_response";
        case Outcome::wrapper_error: return "wrapper_error";
        case Outcome::unknown_error: return "unknown_error";
        case Outcome::signaled: return "signaled";
        case Outcome::skipped: return "skipped";
    }
    return "unknown_error";
}

py::dict fields_dict(const CronExpression::Fields& f) {
    py::dict d;
    d["sec"] = f.sec;
    d["min"] = f.min;
    d["hour"] = f.hour;
    d["dom"] = f.dom;
    d["mon"] = f.mon;
    d["dow"] = f.dow;
    d["year"] = f.year;
    return d;
}


// ApiClient errors as Python's own exception types; the message names the URL and spd's text.
[[noreturn]] void raise_api_error(const Error& e) {
    PyObject* type = PyExc_RuntimeError;
    if (e.field == "unreachable") type = PyExc_ConnectionError;
    else if (e.field == "unauthorized" || e.field == "forbidden") type = PyExc_PermissionError;
    else if (e.field == "not_found") type = PyExc_LookupError;
    else if (e.field == "bad_request") type = PyExc_ValueError;
    PyErr_SetString(type, e.message.c_str());
    throw py::error_already_set();
}

template <typename T>
T api_value(Result<T> r) {
    if (!r) raise_api_error(r.error());
    return std::move(*r);
}

py::object optional_str(const std::string& s) { return s.empty() ? py::object(py::none()) : py::object(py::str(s)); }

py::dict target_dict(const TargetInfo& t) {
    py::dict d;
    d["machine"] = t.machine;
    d["state"] = t.state;
    d["retcode"] = t.retcode ? py::object(py::int_(*t.retcode)) : py::object(py::none());
    d["starttime"] = optional_str(t.starttime);
    d["endtime"] = optional_str(t.endtime);
    d["duration"] = t.duration ? py::object(py::float_(*t.duration)) : py::object(py::none());
    d["output_length"] = t.output_length;
    d["notes"] = t.notes;
    return d;
}

py::dict run_dict(const RunInfo& r) {
    py::dict d;
    d["instance"] = r.instance;
    d["job"] = r.job;
    d["trigger"] = r.trigger;
    d["started"] = optional_str(r.started);
    d["ended"] = optional_str(r.ended);
    d["finished"] = r.finished;
    d["success"] = r.success;
    d["kill_requested"] = r.kill_requested;
    py::list targets;
    for (const auto& t : r.targets) targets.append(target_dict(t));
    d["targets"] = targets;
    return d;
}

py::dict job_dict(const JobInfo& j) {
    py::dict d;
    d["name"] = j.name;
    d["group"] = j.group;
    d["schedule"] = j.schedule;
    d["timezone"] = j.timezone;
    d["command"] = j.command;
    d["targets"] = j.targets;
    d["use_wrapper"] = j.use_wrapper;
    d["next_run"] = optional_str(j.next_run);
    d["last_run"] = optional_str(j.last_run);
    d["last_success"] = j.last_success ? py::object(py::bool_(*j.last_success)) : py::object(py::none());
    d["running"] = j.running;
    d["targets_running"] = j.targets_running;
    d["last_instance"] = optional_str(j.last_instance);
    return d;
}

}  // namespace

PYBIND11_MODULE(saltpeter, m) {
    m.doc() =
        "saltpeter: schedules, job configuration, exit codes and crontab import of the saltpeter\n"
        "distributed cron (the pure parts of libsaltpeter). Errors raise ValueError with the message\n"
        "spctl prints; datetimes are timezone-aware in and out.";
    m.attr("__version__") = std::string(version());

    // ---- Problem ----
    py::class_<Problem>(m, "Problem", "One finding of the config loader or validator, with where it is.")
        .def_readonly("file", &Problem::file, "The file it is about (as given to the loader).")
        .def_readonly("line", &Problem::line, "1-based line; 0 when unknown.")
        .def_readonly("column", &Problem::column, "1-based column; 0 when unknown.")
        .def_readonly("job", &Problem::job, "The job it is about; '' when none.")
        .def_readonly("field", &Problem::field, "The YAML key it is about; '' when none.")
        .def_readonly("message", &Problem::message, "What is wrong.")
        .def_property_readonly("severity", [](const Problem& p) { return severity_name(p.severity); },
                               "'error' (the job or file is skipped) or 'warning'.")
        .def_property_readonly("is_error", &Problem::is_error, "True for an error.")
        .def("__str__", &Problem::to_string, "The line spctl validate prints: 'file:line:col: job ...: message'.")
        .def("__repr__", [](const Problem& p) {
            return "<Problem " + severity_name(p.severity) + " " + p.to_string() + ">";
        });

    // ---- CronExpression ----
    py::class_<FireTimes>(m, "FireTimes", "Iterator over the fire times after a start instant (aware datetimes).")
        .def("__iter__", [](FireTimes& self) -> FireTimes& { return self; }, py::return_value_policy::reference_internal)
        .def("__next__", &FireTimes::next);

    py::class_<CronExpression>(m, "CronExpression",
                               "A seven-field schedule 'sec min hour dom mon dow year' or a macro (@daily),\n"
                               "evaluated in any IANA time zone with ISC cron's DST rules.")
        .def(py::init([](const std::string& text) {
                 auto e = CronExpression::parse(text);
                 if (!e) raise_value_error(e.error().message);
                 return *e;
             }),
             py::arg("text"),
             "Parses seven fields or a macro. Raises ValueError naming the field, e.g.\n"
             "\"field 'dow': '8' is out of range 0-7\".")
        .def_static(
            "from_fields",
            [](const std::string& min, const std::string& hour, const std::string& dom, const std::string& mon,
               const std::string& dow, const std::string& sec, const std::string& year) {
                CronExpression::Fields f;
                f.sec = sec;
                f.min = min;
                f.hour = hour;
                f.dom = dom;
                f.mon = mon;
                f.dow = dow;
                f.year = year;
                auto e = CronExpression::from_fields(f);
                if (!e) raise_value_error(e.error().message);
                return *e;
            },
            py::kw_only(), py::arg("min"), py::arg("hour"), py::arg("dom"), py::arg("mon"), py::arg("dow"),
            py::arg("sec") = "0", py::arg("year") = "*",
            "Builds an expression from separate fields (the job YAML's keys). Raises ValueError.")
        .def(
            "next_after",
            [](const CronExpression& self, const py::object& dt, const py::object& tz) -> py::object {
                const auto zone = zone_or_raise(zone_name(tz));
                auto n = self.next_after(to_sys_seconds(dt), zone);
                if (!n) return py::none();
                return to_datetime(*n, zone);
            },
            py::arg("after"), py::arg("tz") = "UTC",
            "The first fire time strictly after the aware datetime `after`, with the fields read in\n"
            "zone `tz` (an IANA name or a zoneinfo.ZoneInfo); an aware datetime with that zone's offset,\n"
            "or None when the expression never fires again. Raises ValueError for a naive datetime or\n"
            "an unknown zone.")
        .def(
            "iter_after",
            [](const CronExpression& self, const py::object& dt, const py::object& tz) {
                return FireTimes(self, zone_or_raise(zone_name(tz)), to_sys_seconds(dt));
            },
            py::arg("after"), py::arg("tz") = "UTC",
            "An iterator over every fire time after `after` (see next_after); it ends when the\n"
            "expression never fires again.")
        .def_property_readonly("text", &CronExpression::text, "The expression as written (trimmed).")
        .def_property_readonly("fields", [](const CronExpression& self) { return fields_dict(self.fields()); },
                               "The seven fields as a dict (a macro's expansion for a macro).")
        .def_property_readonly("follows_real_time", &CronExpression::follows_real_time,
                               "True when the hour field is '*' or '*/N' (real time across DST changes).")
        .def("__str__", &CronExpression::text)
        .def("__repr__", [](const CronExpression& self) { return "CronExpression('" + self.text() + "')"; });

    // ---- configuration ----
    py::class_<Job>(m, "Job", "One job of a configuration directory, with every default applied.")
        .def_readonly("name", &Job::name, "The job name (its YAML key).")
        .def_readonly("group", &Job::group, "The file name without .yaml/.yml.")
        .def_readonly("file", &Job::file, "The file it came from.")
        .def_readonly("line", &Job::line, "The line of the job's key.")
        .def_readonly("schedule", &Job::schedule, "When it fires (CronExpression).")
        .def_property_readonly("timezone", [](const Job& j) { return j.zone.name(); },
                               "The IANA zone its fields are read in (after defaults).")
        .def_readonly("command", &Job::command, "The shell command.")
        .def_readonly("targets", &Job::targets, "The Salt target expression.")
        .def_property_readonly("target_type", [](const Job& j) { return std::string(to_string(j.target_type)); },
                               "glob, list, compound, ...")
        .def_readonly("cwd", &Job::cwd, "Working directory, or None.")
        .def_readonly("user", &Job::user, "User to run as, or None.")
        .def_property_readonly(
            "env", [](const Job& j) { py::dict d; for (const auto& [k, v] : j.env) d[py::str(k)] = v; return d; },
            "Extra environment (dict, in file order).")
        .def_readonly("use_wrapper", &Job::use_wrapper, "False: legacy mode (Salt alone).")
        .def_property_readonly("timeout", [](const Job& j) { return j.timeout.count(); }, "Seconds; 0 = unlimited.")
        .def_property_readonly("concurrency", [](const Job& j) { return std::string(to_string(j.concurrency)); },
                               "forbid, allow or replace.")
        .def("__repr__", [](const Job& j) { return "<Job " + j.name + " '" + j.schedule.text() + "'>"; });

    py::class_<LoadResult>(m, "Config", "The effective configuration of a directory and the loader's problems.")
        .def_property_readonly("jobs", [](const LoadResult& r) { return r.config.jobs; }, "The valid jobs, by name.")
        .def_property_readonly("problems", [](const LoadResult& r) { return r.problems; },
                               "Errors and warnings of the loader, in file order.")
        .def("job", [](const LoadResult& r, const std::string& name) -> std::optional<Job> {
                 const Job* j = r.config.find(name);
                 if (j == nullptr) return std::nullopt;
                 return *j;
             },
             py::arg("name"), "The job of that name, or None.")
        .def_property_readonly("logdir", [](const LoadResult& r) { return r.config.settings.logdir; },
                               "saltpeter_config.logdir.")
        .def_property_readonly("default_timezone", [](const LoadResult& r) { return r.config.settings.default_timezone; },
                               "saltpeter_config.default_timezone.")
        .def_property_readonly("error_count", &LoadResult::error_count, "Number of errors.")
        .def_property_readonly("warning_count", &LoadResult::warning_count, "Number of warnings.")
        .def("__repr__", [](const LoadResult& r) {
            return "<Config " + std::to_string(r.config.jobs.size()) + " jobs, " + std::to_string(r.error_count()) +
                   " errors>";
        });

    m.def("load_config", &load_dir_or_raise, py::arg("configdir"),
          "Loads every *.yaml/*.yml of a directory as spd does: broken files and jobs are reported in\n"
          "Config.problems and skipped. Raises FileNotFoundError/OSError when the directory cannot be read.");
    m.def(
        "validate",
        [](const std::string& dir, const py::object& now) { return validate_loaded(load_dir_or_raise(dir), now); },
        py::arg("configdir"), py::arg("now") = py::none(),
        "Every problem `spctl validate` reports for a directory (loader problems, then schedules that\n"
        "never fire again after `now` (an aware datetime; default: now) and DST warnings).");
    m.def(
        "validate_text",
        [](const std::string& text, const std::string& origin, const py::object& now) {
            return validate_loaded(merge_configs({parse_config(text, origin)}), now);
        },
        py::arg("text"), py::arg("origin") = "config.yaml", py::arg("now") = py::none(),
        "The same for one YAML document given as text; `origin` names it in the problems.");

    // ---- exit codes ----
    py::class_<ExitCodeMapper>(m, "ExitCodeMapper", "Meaning of the exit codes saltpeter records (docs/exit-codes.md).")
        .def_static("meaning", &ExitCodeMapper::meaning, py::arg("code"),
                    "One line for operators, e.g. 124 -> 'timeout: the job exceeded its timeout'.")
        .def_static("outcome", [](int code) { return outcome_name(ExitCodeMapper::outcome(code)); }, py::arg("code"),
                    "The outcome a code stands for: 'success', 'timeout', 'heartbeat_lost', 'signaled', ...")
        .def_static("is_success", &ExitCodeMapper::is_success, py::arg("code"), "True only for 0.")
        .def_static(
            "table",
            []() {
                py::list rows;
                for (const auto& r : ExitCodeMapper::table()) {
                    rows.append(py::make_tuple(r.first, r.last, std::string(r.meaning), std::string(r.set_by)));
                }
                return rows;
            },
            "The exit-code table as (first, last, meaning, set_by) tuples, in code order.");
    m.def("signal_name", &signal_name, py::arg("signal_number"), "'SIGTERM' for 15; 'signal N' without a name.");

    // ---- crontab import ----
    py::class_<CrontabImport>(m, "CrontabImport", "A crontab converted into a saltpeter job file.")
        .def_readonly("yaml", &CrontabImport::yaml, "The YAML document.")
        .def_readonly("problems", &CrontabImport::problems, "Lines left out (errors) or converted with a loss.")
        .def_readonly("jobs", &CrontabImport::jobs, "Number of jobs written.");
    m.def(
        "import_crontab",
        [](const std::string& text, const std::string& targets, const std::string& target_type, bool system,
           const std::string& origin) {
            auto type = target_type_from_string(target_type);
            if (!type) raise_value_error("unknown target type '" + target_type + "'");
            if (targets.empty()) raise_value_error("targets must not be empty");
            CrontabImportOptions o;
            o.targets = targets;
            o.target_type = *type;
            o.system_crontab = system;
            o.origin = origin;
            return import_crontab(text, o);
        },
        py::arg("text"), py::kw_only(), py::arg("targets"), py::arg("target_type") = "glob",
        py::arg("system") = false, py::arg("origin") = "crontab",
        "Converts crontab text as `spctl import-crontab` does; `system=True` reads the 6th field as\n"
        "the user (/etc/crontab).");

    // ---- API client ----
    py::class_<ApiClient>(m, "ApiClient",
                          "A client of a running spd's HTTP API (docs/api.md). Blocking calls; errors raise\n"
                          "ConnectionError (spd unreachable), PermissionError (401/403), LookupError (unknown\n"
                          "job or run), ValueError (bad request) or RuntimeError, naming the URL.")
        .def(py::init([](const std::string& url, const std::string& token, double timeout, const std::string& ca_file) {
                 if (timeout <= 0) raise_value_error("timeout must be positive");
                 ApiClientOptions o;
                 o.url = url;
                 o.token = token;
                 o.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout * 1000));
                 o.ca_file = ca_file;
                 return std::make_unique<ApiClient>(o);
             }),
             py::arg("url") = "http://127.0.0.1:8888", py::kw_only(), py::arg("token") = "", py::arg("timeout") = 10.0,
             py::arg("ca_file") = "")
        .def(
            "status", [](ApiClient& c) {
                py::list out;
                for (const auto& j : api_value(c.jobs())) out.append(job_dict(j));
                return out;
            },
            "Every job with its schedule, next and last run, last result and running instances (list of dicts).")
        .def(
            "job", [](ApiClient& c, const std::string& name) { return job_dict(api_value(c.job(name))); },
            py::arg("name"), "One job as in status(); LookupError for an unknown job.")
        .def(
            "history", [](ApiClient& c, const std::string& job, std::size_t limit) {
                py::list out;
                for (const auto& r : api_value(c.history(job, limit))) out.append(run_dict(r));
                return out;
            },
            py::arg("job"), py::arg("limit") = 20, "Past runs of `job`, newest first, with per-target exit codes.")
        .def(
            "run", [](ApiClient& c, const std::string& instance) { return run_dict(api_value(c.run(instance))); },
            py::arg("instance"), "One run by instance id.")
        .def(
            "run_now",
            [](ApiClient& c, const std::string& job, bool force) -> py::object {
                auto started = c.run_now(job, force);
                if (!started && started.error().field == "queued") return py::none();
                return py::str(api_value(std::move(started)));
            },
            py::arg("job"), py::kw_only(), py::arg("force") = false,
            "Starts `job` now and returns the instance id; None when spd queued the request (global\n"
            "maintenance). `force=True` starts a `forbid` job even while it runs.")
        .def(
            "kill",
            [](ApiClient& c, const std::string& job, const std::optional<std::string>& machine,
               const std::optional<std::string>& instance) {
                auto done = c.kill(job, machine, instance);
                if (!done) raise_api_error(done.error());
            },
            py::arg("job"), py::kw_only(), py::arg("machine") = py::none(), py::arg("instance") = py::none(),
            "Asks spd to kill the running instance(s) of `job` (or one instance / machine); returns once\n"
            "spd accepted it. RuntimeError when nothing runs.")
        .def(
            "logs",
            [](ApiClient& c, const std::string& job, const std::optional<std::string>& instance,
               const std::optional<std::string>& machine) {
                std::string which = instance.value_or("");
                if (which.empty()) {
                    which = api_value(c.job(job)).last_instance;
                    if (which.empty()) {
                        PyErr_SetString(PyExc_LookupError, ("job '" + job + "' has no run to show").c_str());
                        throw py::error_already_set();
                    }
                }
                auto output = c.output(which, machine);
                if (!output) raise_api_error(output.error());
                py::dict out;
                for (const auto& [name, text] : *output) out[py::str(name)] = py::str(text);
                return out;
            },
            py::arg("job"), py::kw_only(), py::arg("instance") = py::none(), py::arg("machine") = py::none(),
            "Output of the last (or the given) run of `job`: a dict machine -> text.")
        .def_property_readonly("url", [](const ApiClient& c) { return c.options().url; }, "The API's base URL.");
}
