// The /ws sessions of the original web UI's protocol, and the push mode of spctl. Per UI client:
// subscriptions (job names), per (job, machine) how much of the latest run's output was sent
// (instance, bytes, UTF-16 units), the config serial it has seen, push on/off.
//
//   open --> config, status, timeline
//   every tick (2 s): [config if the serial changed] status, per subscribed job (config order):
//                     output_chunks then details
//   push mode: the same per-job update (and status) right after a run event, coalesced per turn.
//
// The frames themselves are built by ui_protocol.cpp.

#include <algorithm>

#include <boost/asio/post.hpp>

#include "api/api_server_impl.hpp"
#include "api/ui_protocol.hpp"
#include "runs/run_history.hpp"

namespace saltpeter {

using namespace api;

// ---- WebSocket --------------------------------------------------------------------------------

bool ApiServer::Impl::on_validate(const WsConnectionPtr& con) {
    const Target t = parse_target(con->resource());
    if (t.path != "/ws") {
        con->set_status(404);
        con->set_body(ui::error_json("no WebSocket endpoint at " + t.path + " (use /ws)"));
        return false;
    }
    const std::string origin = con->request_header("Origin");
    if (const std::string why = origin_refusal(origin, false); !why.empty()) {
        spdlog::warn("API /ws {}: upgrade refused: {}", con->remote_endpoint(), why);
        con->set_status(403);
        con->set_body(ui::error_json(why));
        return false;
    }
    const ApiCredential* who = nullptr;
    auto tok = t.query.find("token");
    if (!authorise(con->request_header("Authorization"), tok == t.query.end() ? "" : tok->second, who)) {
        con->set_status(401);
        con->set_body(ui::error_json("missing or invalid API token (Authorization: Bearer or ?token=)"));
        return false;
    }
    return true;
}

void ApiServer::Impl::on_open(const WsConnectionPtr& con) {
    m_peers.erase(con);
    auto c = std::make_shared<Client>();
    c->link = con;
    c->peer = con->remote_endpoint();
    const Target t = parse_target(con->resource());
    const ApiCredential* who = nullptr;
    auto tok = t.query.find("token");
    authorise(con->request_header("Authorization"), tok == t.query.end() ? "" : tok->second, who);
    c->operate = m_options.credentials.empty() || (who != nullptr && who->operate);
    c->push = t.query.count("push") > 0 && t.query.at("push") != "0";
    if (auto sub = t.query.find("subscribe"); sub != t.query.end() && !sub->second.empty()) c->subscriptions.push_back(sub->second);
    m_clients[con.get()] = c;
    if (m_stopped) return;
    const Config& config = m_backend.config();
    c->config_serial = m_backend.config_serial();
    send(c, ui::config_frame(config, c->config_serial));
    send_status(c);
    send(c, ui::timeline_frame());
    if (!c->subscriptions.empty()) send_subscribed(c);
}

void ApiServer::Impl::on_message(const WsConnectionPtr& con, bool /*is_text*/, const std::string& text) {
    auto it = m_clients.find(con.get());
    if (it == m_clients.end()) return;
    ClientPtr c = it->second;
    auto parsed = ui::parse_command(text);
    if (!parsed) {
        spdlog::warn("API /ws {}: {}", c->peer, parsed.error().message);
        return;
    }
    const ui::Command& cmd = *parsed;
    using Kind = ui::Command::Kind;
    const bool needs_operate = cmd.kind == Kind::run || cmd.kind == Kind::kill_cron || cmd.kind == Kind::kill_machine;
    if (needs_operate && !c->operate) {
        spdlog::warn("API /ws {}: refused {} (token role read; needs operate)", c->peer, text.substr(0, 200));
        if (c->push) send(c, ui::error_json("token role read; run and kill need role operate"));
        return;
    }
    switch (cmd.kind) {
    case Kind::subscribe:
        for (const auto& job : cmd.jobs) {
            if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job) == c->subscriptions.end())
                c->subscriptions.push_back(job);
        }
        send_status(c);
        send_subscribed(c);
        break;
    case Kind::unsubscribe:
        for (const auto& job : cmd.jobs) {
            c->subscriptions.erase(std::remove(c->subscriptions.begin(), c->subscriptions.end(), job), c->subscriptions.end());
            for (auto p = c->positions.begin(); p != c->positions.end();) p = p->first.first == job ? c->positions.erase(p) : std::next(p);
        }
        break;
    case Kind::ack:
        spdlog::debug("API /ws {}: ack {} {} {}", c->peer, cmd.job, cmd.machine, cmd.position);
        break;
    case Kind::run: {
        auto started = m_backend.run_now(cmd.job, false);
        if (started) spdlog::info("API /ws {}: run {} started {}", c->peer, cmd.job, *started);
        else spdlog::warn("API /ws {}: run {}: {}", c->peer, cmd.job, started.error().message);
        if (c->push) send(c, started ? Json{{"type", "started"}, {"cron", cmd.job}, {"job_instance", *started}}.dump()
                                     : ui::error_json(started.error().message));
        break;
    }
    case Kind::kill_cron:
        spdlog::info("API /ws {}: killCron {}: {}", c->peer, cmd.job, m_backend.kill_job(cmd.job, std::nullopt) ? "sent" : "nothing running");
        break;
    case Kind::kill_machine: {
        std::optional<std::string> instance = cmd.instance;
        if (!instance) {
            for (const RunRecord* run : m_backend.running(cmd.job)) {
                if (run->targets.count(cmd.machine)) instance = run->instance;
            }
        }
        if (!instance) {
            spdlog::warn("API /ws {}: killMachine {} {}: no running instance has that machine", c->peer, cmd.job, cmd.machine);
            break;
        }
        spdlog::info("API /ws {}: killMachine {} {} {}: {}", c->peer, cmd.job, cmd.machine, *instance,
                     m_backend.kill_run(*instance, cmd.machine) ? "sent" : "nothing running");
        break;
    }
    case Kind::get_timeline: {
        // Served from the run history (the store; no search backend needed); a bad bound answers with
        // the request id and no content, as the UI expects a reply.
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        auto start = ui::parse_timeline_bound(cmd.start_date.empty() ? "now-1d" : cmd.start_date, now);
        auto end = ui::parse_timeline_bound(cmd.end_date.empty() ? "now" : cmd.end_date, now);
        if (!start || !end) {
            spdlog::warn("API /ws {}: getTimeline: {}", c->peer, (!start ? start.error() : end.error()).message);
            send(c, ui::timeline_frame({}, now, now, cmd.id, unix_seconds_now()));
            break;
        }
        send(c, ui::timeline_frame(m_backend.history().runs_between(*start, *end, k_timeline_max_runs), *start, *end, cmd.id,
                                   unix_seconds_now()));
        break;
    }
    case Kind::push:
        c->push = cmd.push;
        if (c->push) send_subscribed(c);
        break;
    case Kind::none:
        break;
    }
}

void ApiServer::Impl::send(const ClientPtr& c, const std::string& text) {
    if (c->link->buffered_amount() > k_max_send_queue_bytes) {
        spdlog::warn("API /ws {}: client reads too slowly ({} bytes queued); closing it", c->peer, c->link->buffered_amount());
        c->link->close(ws_close::k_try_again_later, "too slow");
        return;
    }
    c->link->send_text(text);
}

void ApiServer::Impl::send_status(const ClientPtr& c) {
    send(c, ui::status_frame(m_backend.runs(), m_backend.job_status()));
}

void ApiServer::Impl::send_job(const ClientPtr& c, const std::string& job) {
    const Job* cfg = m_backend.config().find(job);
    if (cfg == nullptr) return;  // the original sends nothing for jobs not in config.crons
    const RunRecord* latest = ui::latest_run(m_backend.runs(), job);
    if (latest != nullptr) {
        for (const auto& [machine, t] : latest->targets) {
            Position& pos = c->positions[{job, machine}];
            if (pos.instance != latest->instance || pos.bytes > t.output.size()) pos = Position{latest->instance, 0, 0};
            if (t.output.size() <= pos.bytes) continue;
            ui::OutputChunk chunk;
            chunk.cron = job;
            chunk.machine = machine;
            chunk.chunk = t.output.substr(pos.bytes);
            chunk.position = pos.units;
            chunk.total_length = pos.units + ui::utf16_length(chunk.chunk);
            chunk.is_complete = t.endtime.has_value();
            if (c->push) chunk.instance = latest->instance;
            pos.bytes = t.output.size();
            pos.units = chunk.total_length;
            send(c, ui::output_chunk_frame(chunk));
        }
    }
    const JobStatus st = status_of(job);
    send(c, ui::details_frame(job, cfg->group, &st, latest, c->push));
}

void ApiServer::Impl::send_subscribed(const ClientPtr& c) {
    // In config order, as the original iterates config.crons.
    for (const Job& job : m_backend.config().jobs) {
        if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job.name) != c->subscriptions.end())
            send_job(c, job.name);
    }
}

void ApiServer::Impl::arm_tick() {
    m_tick.expires_after(std::chrono::milliseconds(m_options.tick_ms));
    std::weak_ptr<Impl> weak = shared_from_this();
    m_tick.async_wait([weak](const boost::system::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) {
            self->guarded("tick", [&] { self->on_tick(); });
            if (!self->m_stopped) self->arm_tick();
        }
    });
}

void ApiServer::Impl::on_tick() {
    for (auto it = m_peers.begin(); it != m_peers.end();) it = it->first.expired() ? m_peers.erase(it) : std::next(it);
    const double serial = m_backend.config_serial();
    auto clients = m_clients;  // a send may close one
    for (auto& [conn, c] : clients) {
        if (c->config_serial != serial) {
            c->config_serial = serial;
            send(c, ui::config_frame(m_backend.config(), serial));
        }
        send_status(c);
        send_subscribed(c);
    }
}

void ApiServer::Impl::touch(const std::string& job, bool status) {
    if (m_stopped) return;
    bool any = false;
    for (auto& [conn, c] : m_clients) {
        if (!c->push) continue;
        if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job) != c->subscriptions.end()) {
            c->dirty_jobs.insert(job);
            any = true;
        }
        if (status) {
            c->dirty_status = true;
            any = true;
        }
    }
    if (!any || m_flush_posted) return;
    m_flush_posted = true;
    // After the current handler, so that one burst of events becomes one update per client.
    boost::asio::post(m_io, [weak = std::weak_ptr<Impl>(shared_from_this())] {
        if (auto self = weak.lock()) self->guarded("push", [&] { self->flush_push(); });
    });
}

void ApiServer::Impl::flush_push() {
    m_flush_posted = false;
    if (m_stopped) return;
    auto clients = m_clients;
    for (auto& [conn, c] : clients) {
        if (c->dirty_status) send_status(c);
        for (const Job& job : m_backend.config().jobs) {
            if (c->dirty_jobs.count(job.name)) send_job(c, job.name);
        }
        c->dirty_status = false;
        c->dirty_jobs.clear();
    }
}

}  // namespace saltpeter
