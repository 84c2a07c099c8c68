// The embedding layer on its own (src/interpreter_pool.cpp), without Orthanc:
// each scenario runs in a fresh process started by tests/embed/test_embed.py, as
// CPython's _testembed does. With no Orthanc context, the plugin's log lines are
// dropped; the scenarios print what the test checks and exit 0 on success.
// The "config" scenario runs parse_config (src/config.cpp) alone, on the JSON text
// and CPU count given as arguments, and starts no Python.

#include "config.h"
#include "interpreter_pool.h"

#include <pybind11/embed.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;
using opm::attach_guard;
using opm::interpreter_pool;

namespace {

void expect(bool condition, const std::string& what) {
    if (!condition) throw std::runtime_error("expected: " + what);
}

std::chrono::steady_clock::time_point in_seconds(int seconds) {
    return std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
}

/// Starts `count` isolated sub-interpreters; each defines `marker` = its index.
void start(size_t count) {
    opm::pool_options options;
    options.interpreters = static_cast<unsigned>(count);
    options.home = ORTHANC_PYTHON_MULTI_HOME;
    interpreter_pool::instance().initialize(
        // As the plugin's warm-up does: on 3.13.0, datetime first imported in a
        // sub-interpreter crashes when that interpreter ends (gh-136421).
        options, [] { py::exec("import datetime, json"); },
        [](size_t index) { py::globals()["marker"] = index; }, [](size_t) { return true; });
}

void stop() {
    interpreter_pool::instance().finalize([](size_t) { return true; }, in_seconds(10));
}

/// The `marker` global of the interpreter the calling thread is attached to.
size_t marker() {
    return py::globals()["marker"].cast<size_t>();
}

/// Start, use, stop, twice in one process (Orthanc's /tools/reset does this).
void restart() {
    for (int round = 0; round < 2; ++round) {
        start(2);
        std::thread worker([] {
            for (size_t index = 0; index < 2; ++index) {
                attach_guard attached(index);
                expect(marker() == index, "each interpreter keeps its own globals");
                py::exec("import json, datetime; json.dumps({'now': str(datetime.date.today())})");
            }
        });
        worker.join();
        stop();
        std::printf("round %d stopped\n", round);
    }
}

/// A thread attached to one interpreter attaches to another and comes back.
void nested_attach() {
    start(2);
    std::thread worker([] {
        attach_guard outer(0);
        expect(interpreter_pool::instance().current_index() == 0, "attached to 0");
        {
            attach_guard inner(1);
            expect(interpreter_pool::instance().current_index() == 1, "attached to 1");
            expect(marker() == 1, "interpreter 1's globals");
            {
                attach_guard again(1);  // the same interpreter, nested (an SDK call re-entering)
                expect(marker() == 1, "interpreter 1 again");
            }
        }
        expect(interpreter_pool::instance().current_index() == 0, "back in 0");
        expect(marker() == 0, "interpreter 0's globals");
    });
    worker.join();
    stop();
    std::printf("nested attach ok\n");
}

/// Thread states cached by threads that ended before the stop, and by a thread
/// that outlives it: both are reaped once, without a crash.
void reap_thread_states() {
    start(2);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([i] {
            attach_guard attached(static_cast<size_t>(i % 2));
            py::exec("total = sum(range(1000))");
        });
    }
    for (std::thread& thread : threads) thread.join();

    std::mutex mutex;
    std::condition_variable changed;
    bool attached_once = false;
    bool stopped = false;
    std::thread survivor([&] {
        {
            attach_guard attached(1);
            py::exec("x = 1");
        }
        std::unique_lock<std::mutex> lock(mutex);
        attached_once = true;
        changed.notify_all();
        changed.wait(lock, [&] { return stopped; });
    });  // exits after the stop: its cached state was reaped by finalize()
    {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return attached_once; });
    }
    stop();
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopped = true;
    }
    changed.notify_all();
    survivor.join();
    std::printf("thread states reaped\n");
}

/// Parses `json` as the plugin does and prints each field on its own line as
/// name=value; other_python_plugins gives its count, then one indexed line per file.
/// A value refused: "config_error: <message>" on stderr and exit status 3.
int config(const char* json, unsigned cpu_count) {
    opm::plugin_config parsed;
    try {
        parsed = opm::parse_config(json, cpu_count);
    } catch (const opm::config_error& error) {
        std::fprintf(stderr, "config_error: %s\n", error.what());
        return 3;
    }
    std::printf("script=%s\n", parsed.script.c_str());
    std::printf("main_script=%s\n", parsed.main_script.c_str());
    std::printf("verbose=%s\n", parsed.verbose ? "true" : "false");
    std::printf("interpreters=%u\n", parsed.interpreters);
    std::printf("virtual_env=%s\n", parsed.virtual_env.c_str());
    std::printf("home=%s\n", parsed.home.c_str());
    std::printf("other_python_plugins=%zu\n", parsed.other_python_plugins.size());
    for (size_t i = 0; i < parsed.other_python_plugins.size(); ++i)
        std::printf("other_python_plugins[%zu]=%s\n", i, parsed.other_python_plugins[i].c_str());
    return 0;
}

/// A CPU count argument: a whole decimal number, else false.
bool parse_count(const char* text, unsigned& count) {
    char* end = nullptr;
    const unsigned long parsed = std::strtoul(text, &end, 10);
    if (*text < '0' || *text > '9' || *end != '\0' || parsed > 0xFFFFFFFFul) return false;
    count = static_cast<unsigned>(parsed);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const std::map<std::string, std::function<void()>> scenarios = {
        {"restart", restart},
        {"nested-attach", nested_attach},
        {"reap-thread-states", reap_thread_states},
    };
    unsigned cpu_count = 0;
    const bool is_config = argc >= 2 && std::strcmp(argv[1], "config") == 0;
    if (is_config ? argc != 4 || !parse_count(argv[3], cpu_count)
                  : argc != 2 || scenarios.count(argv[1]) == 0) {
        std::fprintf(stderr,
                     "usage: %s restart|nested-attach|reap-thread-states\n"
                     "       %s config JSON CPU_COUNT\n",
                     argv[0], argv[0]);
        return 2;
    }
    try {
        if (is_config) return config(argv[2], cpu_count);
        scenarios.at(argv[1])();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s: %s\n", argv[1], error.what());
        return 1;
    }
    return 0;
}
