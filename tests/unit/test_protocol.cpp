#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/protocol.hpp"

using namespace saltpeter::protocol;
using nlohmann::json;

namespace {
// Every frame quoted in PROTOCOL.md 1.3 (the "..." elisions filled in).
const char* const k_wrapper_frames[] = {
    R"({"type": "connect", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "timestamp": "2026-11-28T04:38:47.740437+00:00"})",
    R"({"type": "start", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "pid": 18538, "version": "unknown", "timestamp": "2026-11-28T04:38:47.740601+00:00"})",
    R"({"type": "output", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "stream": "stdout", "data": "line 1\nline 2\n", "seq": 0, "timestamp": "2026-11-28T04:38:48.756361+00:00"})",
    R"({"type": "output", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "stream": "stdout", "data": "line 3\n", "seq": 1, "timestamp": "2026-11-28T04:38:49.756361+00:00"})",
    R"({"type": "complete", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "retcode": 3, "seq": 2, "timestamp": "2026-11-28T04:38:50.803468+00:00"})",
    R"({"type": "heartbeat", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "timestamp": "2026-11-28T04:38:50.803468+00:00"})",
    R"({"type": "sync_request", "job_name": "demo", "job_instance": "demo_1", "machine": "testhost", "last_acked_seq": 3, "next_seq": 6, "timestamp": "2026-11-28T04:38:50.803468+00:00"})",
    R"({"type": "output", "job_name": "killdemo", "job_instance": "killdemo_1", "machine": "testhost", "stream": "stderr", "data": "\n[Job terminated by user request]\n", "seq": 4, "timestamp": "2026-11-28T04:38:50.803468+00:00"})",
};
const char* const k_server_frames[] = {
    R"({"type": "ack", "ack_type": "connect", "timestamp": "2026-11-28T04:38:47.774372+00:00"})",
    R"({"type": "ack", "ack_type": "start", "timestamp": "2026-11-28T04:38:47.774962+00:00"})",
    R"({"type": "ack", "ack_type": "output", "timestamp": "2026-11-28T04:38:48.757181+00:00", "seq": 0})",
    R"({"type": "ack", "ack_type": "complete", "timestamp": "2026-11-28T04:38:50.854432+00:00", "seq": 2})",
    R"({"type": "sync_response", "last_seq": -1, "timestamp": "2026-11-28T04:38:50.854432+00:00"})",
    R"({"type": "nack", "nack_type": "out_of_order", "expected_seq": 1, "received_seq": 2, "timestamp": "2026-11-28T04:38:50.854432+00:00"})",
    R"({"type": "kill", "job_name": "killdemo", "job_instance": "killdemo_1", "machine": "testhost", "timestamp": "2026-11-28T04:38:50.854432+00:00"})",
    R"J({"type": "error", "code": "JOB_NOT_FOUND", "message": "Job no longer exists on server (stopped or restarted)"})J",
};
}  // namespace

TEST_CASE("every wrapper frame of PROTOCOL.md 1.3 parses and serialises back to the same JSON") {
    for (const char* text : k_wrapper_frames) {
        auto m = parse_wrapper_frame(text);
        REQUIRE_MESSAGE(m.ok(), text);
        CHECK(json::parse(serialize(*m)) == json::parse(text));
    }
}

TEST_CASE("every server frame of PROTOCOL.md 1.3 parses and serialises back to the same JSON") {
    for (const char* text : k_server_frames) {
        auto m = parse_server_frame(text);
        REQUIRE_MESSAGE(m.ok(), text);
        CHECK(json::parse(serialize(*m)) == json::parse(text));
    }
}

TEST_CASE("parsed fields of the quoted frames") {
    auto start = parse_wrapper_frame(k_wrapper_frames[1]);
    REQUIRE(start.ok());
    const auto& s = std::get<Start>(*start);
    CHECK(s.pid == 18538);
    CHECK(s.version == "unknown");
    CHECK(s.envelope.job_instance == "demo_1");
    auto complete = parse_wrapper_frame(k_wrapper_frames[4]);
    CHECK(std::get<Complete>(*complete).retcode == 3);
    CHECK(std::get<Complete>(*complete).seq == 2);
    auto ack = parse_server_frame(k_server_frames[2]);
    CHECK(std::get<Ack>(*ack).ack_type == AckType::output);
    CHECK(std::get<Ack>(*ack).seq == 0);
    CHECK_FALSE(std::get<Ack>(*parse_server_frame(k_server_frames[0])).proto.has_value());
    auto err = parse_server_frame(k_server_frames[7]);
    CHECK(std::get<ServerError>(*err).code == "JOB_NOT_FOUND");
    CHECK(type_name(*err) == "error");
}

TEST_CASE("integers outside int64 are an error, not undefined behaviour (fuzz_wrapper_frame finding)") {
    // tests/fuzz/regressions/fuzz_wrapper_frame/: a float far beyond int64 was cast to int64 (UBSan).
    auto huge_float = parse_server_frame(
        R"({"type":"nack","nack_type":"out_of_order","expected_seq":7.7e126,"received_seq":1,"timestamp":"t"})");
    REQUIRE_FALSE(huge_float);
    CHECK(huge_float.error().message == "nack: field 'expected_seq' is out of range");
    auto huge_digits = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"x","seq":77777777777777777777777777771})");
    REQUIRE_FALSE(huge_digits);
    CHECK(huge_digits.error().field == "seq");
    auto above_int64 = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"x","seq":9223372036854775808})");
    REQUIRE_FALSE(above_int64);
    CHECK(above_int64.error().message == "output: field 'seq' is out of range");
    auto max = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"x","seq":9223372036854775807})");
    REQUIRE(max);
    CHECK(std::get<Output>(*max).seq == INT64_MAX);
    auto whole_float = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"x","seq":3.0})");
    REQUIRE(whole_float);
    CHECK(std::get<Output>(*whole_float).seq == 3);
}

TEST_CASE("5.3 extensions: connect with proto/next_seq/token, ack with proto/last_seq") {
    Connect c{Envelope{"j", "j_1", "m", "2026-11-28T04:38:47.740437+00:00"}, 2, 7, std::string("abc")};
    const auto text = serialize(WrapperMessage{c});
    CHECK(text ==
          R"({"type":"connect","job_name":"j","job_instance":"j_1","machine":"m","proto":2,"next_seq":7,"token":"abc","timestamp":"2026-11-28T04:38:47.740437+00:00"})");
    auto back = parse_wrapper_frame(text);
    REQUIRE(back.ok());
    CHECK(std::get<Connect>(*back).next_seq == 7);
    CHECK(std::get<Connect>(*back).token == std::string("abc"));
    auto ack = parse_server_frame(R"({"type":"ack","ack_type":"connect","timestamp":"x","proto":2,"last_seq":-1})");
    REQUIRE(ack.ok());
    CHECK(std::get<Ack>(*ack).proto == 2);
    CHECK(std::get<Ack>(*ack).last_seq == -1);
}

TEST_CASE("bad frames give errors naming the type or field, never exceptions") {
    CHECK(parse_wrapper_frame("not json").error().message == "frame is not valid JSON");
    CHECK(parse_wrapper_frame("[1]").error().message == "frame is not a JSON object");
    CHECK(parse_wrapper_frame("{}").error().field == "type");
    CHECK(parse_wrapper_frame(R"({"type":5})").error().field == "type");
    CHECK(parse_wrapper_frame(R"({"type":"bogus"})").error().message == "unknown wrapper message type 'bogus'");
    auto bad_seq = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"x","seq":"1"})");
    CHECK(bad_seq.error().message == "output: field 'seq' must be an integer");
    CHECK(bad_seq.error().field == "seq");
    auto missing = parse_wrapper_frame(R"({"type":"start","job_name":"j","job_instance":"i","machine":"m"})");
    CHECK(missing.error().message == "start: field 'pid' is missing");
    CHECK(parse_wrapper_frame(R"({"type":"heartbeat","job_name":"j","job_instance":"i"})").error().field == "machine");
    CHECK(parse_server_frame(R"({"type":"ack","ack_type":"what"})").error().field == "ack_type");
    CHECK(parse_server_frame(R"({"type":"sync_response"})").error().message == "sync_response: field 'last_seq' is missing");
    CHECK(parse_server_frame(R"({"type":"hello"})").error().message == "unknown server message type 'hello'");
}

TEST_CASE("complete without retcode reads as -1 and negative retcodes survive") {
    auto m = parse_wrapper_frame(R"({"type":"complete","job_name":"j","job_instance":"i","machine":"m"})");
    CHECK(std::get<Complete>(*m).retcode == -1);
    auto neg = parse_wrapper_frame(R"({"type":"complete","job_name":"j","job_instance":"i","machine":"m","retcode":-15,"seq":4})");
    CHECK(std::get<Complete>(*neg).retcode == -15);
}

TEST_CASE("output data: escaped and raw UTF-8 accepted, invalid UTF-8 replaced on output") {
    auto esc = parse_wrapper_frame(
        R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","data":"\u00e9\ud83d\ude00","seq":0})");
    CHECK(std::get<Output>(*esc).data == "\xC3\xA9\xF0\x9F\x98\x80");
    Output o{Envelope{"j", "i", "m", "t"}, "stdout", std::string("ok\xFF"), 0};
    const auto text = serialize(WrapperMessage{o});
    CHECK(json::parse(text)["data"] == "ok\xEF\xBF\xBD");
}

TEST_CASE("timestamps: sent with +00:00, accepted with Z or offsets") {
    using namespace std::chrono;
    const system_clock::time_point t = system_clock::time_point(seconds(1795840727)) + microseconds(740437);
    CHECK(format_timestamp(t) == "2026-11-28T04:38:47.740437+00:00");
    CHECK(parse_timestamp("2026-11-28T04:38:47.740437+00:00").value() == t);
    CHECK(parse_timestamp("2026-11-28T04:38:47.740437Z").value() == t);
    CHECK(parse_timestamp("2026-11-28T06:38:47.740437+02:00").value() == t);
    CHECK(parse_timestamp("2026-11-28T04:38:47+00:00").value() == system_clock::time_point(seconds(1795840727)));
    CHECK_FALSE(parse_timestamp("2026-11-28 04:38").ok());
    CHECK_FALSE(parse_timestamp("2026-13-28T04:38:47Z").ok());
    CHECK_FALSE(parse_timestamp("2026-11-28T04:38:47").ok());
    CHECK(format_timestamp(system_clock::time_point(seconds(0))) == "1970-01-01T00:00:00.000000+00:00");
}

TEST_CASE("sanitize_utf8") {
    CHECK(sanitize_utf8("plain") == "plain");
    CHECK(sanitize_utf8("a\xC3") == "a\xEF\xBF\xBD");
    CHECK(sanitize_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("the fast output serialiser escapes exactly like nlohmann-json") {
    std::string all;
    for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
    all += "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \"quoted\" back\\slash";
    for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9}, all.size()}) {
        const std::string data = all.substr(all.size() - len);
        Output o{Envelope{"j\"ob", "i\n", "m\xC3\xA9", "2026-11-28T04:38:47.740437+00:00"}, "stderr", data, 42};
        nlohmann::ordered_json j;
        j["type"] = "output";
        j["job_name"] = o.envelope.job_name;
        j["job_instance"] = o.envelope.job_instance;
        j["machine"] = o.envelope.machine;
        j["stream"] = o.stream;
        j["data"] = o.data;
        j["seq"] = 42;
        j["timestamp"] = o.envelope.timestamp;
        CHECK(serialize(WrapperMessage{o}) == j.dump());
    }
    Output no_seq{Envelope{"j", "i", "m", "t"}, "stdout", "x", std::nullopt};
    CHECK(serialize(WrapperMessage{no_seq}) ==
          R"({"type":"output","job_name":"j","job_instance":"i","machine":"m","stream":"stdout","data":"x","timestamp":"t"})");
}
