// The embedding layer on its own (src/interpreter_pool.cpp), without Orthanc:
// each scenario runs in a fresh process started by tests/embed/test_embed.py, as
// CPython's _testembed does. With no Orthanc context, the plugin's log lines are
// dropped; the scenarios print what the test checks and exit 0 on success.
// The "config" scenario runs parse_config (src/config.cpp) alone, on the JSON text
// and CPU count given as arguments, and starts no Python.

#include "config.h"
#include "interpreter_pool.h"

#include <pybind11/embed.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;

namespace {

/// A pybind11-bound class of an embedded module, for the reset scenario.
class counter {
public:
    void add(size_t value) { total_ += value; }
    size_t total() const { return total_; }

private:
    size_t total_ = 0;
};

}  // namespace

PYBIND11_EMBEDDED_MODULE(opm_probe, m, py::multiple_interpreters::per_interpreter_gil()) {
    py::class_<counter>(m, "Counter")
        .def(py::init<>())
        .def("add", &counter::add)
        .def("total", &counter::total);
}

using opm::attach_guard;
using opm::interpreter_pool;

namespace {

void expect(bool condition, const std::string& what) {
    if (!condition) throw std::runtime_error("expected: " + what);
}

std::chrono::steady_clock::time_point in_seconds(int seconds) {
    return std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
}

/// The pool of the current run, new at each start() (as the plugin's state is).
std::unique_ptr<interpreter_pool>& current_pool() {
    static std::unique_ptr<interpreter_pool> pool;
    return pool;
}

interpreter_pool& pool() {
    return *current_pool();
}

/// Starts a new pool of `count` interpreters (and the main one alongside when
/// `main_alongside`), running `prepare` and `discard` as the plugin's scripts do.
void start_pool(
    size_t count, const std::function<void(size_t)>& prepare,
    const std::function<bool(size_t)>& discard = [](size_t) { return true; },
    bool main_alongside = false) {
    opm::pool_options options;
    options.interpreters = static_cast<unsigned>(count);
    options.main_alongside = main_alongside;
    options.home = ORTHANC_PYTHON_MULTI_HOME;
    current_pool() = std::make_unique<interpreter_pool>();
    // As the plugin's warm-up does: on 3.13.0, datetime first imported in a
    // sub-interpreter crashes when that interpreter ends (gh-136421).
    pool().initialize(options, [] { py::exec("import datetime, json"); }, prepare, discard);
}

/// Starts `count` isolated sub-interpreters; each defines `marker` = its index.
void start(size_t count) {
    start_pool(count, [](size_t index) { py::globals()["marker"] = index; });
}

void stop() {
    pool().finalize([](size_t) { return true; }, in_seconds(10));
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
                attach_guard attached(pool(), index);
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
        attach_guard outer(pool(), 0);
        expect(pool().current_index() == 0, "attached to 0");
        {
            attach_guard inner(pool(), 1);
            expect(pool().current_index() == 1, "attached to 1");
            expect(marker() == 1, "interpreter 1's globals");
            {
                attach_guard again(pool(),
                                   1);  // the same interpreter, nested (an SDK call re-entering)
                expect(marker() == 1, "interpreter 1 again");
            }
        }
        expect(pool().current_index() == 0, "back in 0");
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
            attach_guard attached(pool(), static_cast<size_t>(i % 2));
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
            attach_guard attached(pool(), 1);
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

/// Runs `fn(index)` on a new thread attached to interpreter `index`.
void on_thread_in(size_t index, const std::function<void(size_t)>& fn) {
    std::thread([index, &fn] {
        attach_guard attached(pool(), index);
        fn(index);
    }).join();
}

/// The number of thread states of the interpreter the calling thread is attached to.
size_t thread_states_here() {
    size_t count = 0;
    for (PyThreadState* state = PyInterpreterState_ThreadHead(PyInterpreterState_Get());
         state != nullptr; state = PyThreadState_Next(state))
        ++count;
    return count;
}

/// The main interpreter alone, started and stopped twice (PythonInterpreters: 1).
void restart_main() {
    for (int round = 0; round < 2; ++round) {
        start(1);
        expect(pool().uses_main_interpreter() && pool().is_main(0), "the main interpreter");
        on_thread_in(0, [](size_t) { expect(marker() == 0, "its own globals"); });
        stop();
        std::printf("round %d stopped\n", round);
    }
}

/// PythonMainScript: the main interpreter as interpreter N beside N sub-interpreters.
void main_alongside() {
    start_pool(
        2, [](size_t index) { py::globals()["marker"] = index; }, [](size_t) { return true; },
        true);
    expect(pool().size() == 3 && pool().script_interpreters() == 2, "3 interpreters, 2 scripts");
    expect(pool().is_main(2) && pool().is_main_alongside(2) && !pool().is_main(0), "main is 2");
    for (size_t index = 0; index < 3; ++index)
        on_thread_in(index, [](size_t i) { expect(marker() == i, "each its own globals"); });
    stop();
    std::printf("main interpreter alongside ok\n");
}

/// A script that needs the main interpreter (sub-interpreter 1 refuses it): the
/// sub-interpreters created so far are discarded and ended, the main one serves.
void fall_back() {
    std::vector<size_t> discarded;
    start_pool(
        3,
        [](size_t index) {
            if (index == 1) throw opm::needs_main_interpreter("sub-interpreter 1 refuses it");
            py::globals()["marker"] = 10 + index;  // 10, then 10 again in the main one
        },
        [&discarded](size_t index) {
            discarded.push_back(index);
            return true;
        });
    expect(discarded == std::vector<size_t>({0, 1}), "both sub-interpreters discarded");
    expect(pool().size() == 1 && pool().uses_main_interpreter(), "the main interpreter alone");
    on_thread_in(0, [](size_t) { expect(marker() == 10, "the main interpreter's globals"); });
    stop();
    std::printf("fell back to the main interpreter\n");
}

/// A script that fails to load in sub-interpreter 1: initialize() throws, the
/// caller stops what was started, and a new start works.
void prepare_error() {
    try {
        start_pool(2, [](size_t index) {
            if (index == 1) throw std::runtime_error("the script raised");
        });
        expect(false, "initialize() throws");
    } catch (const std::runtime_error& error) {
        expect(std::string(error.what()) == "the script raised", "the script's error");
    }
    expect(!pool().running(), "not running");
    expect(pool().finalize([](size_t) { return true; }, in_seconds(10)), "finalized");
    start(2);
    stop();
    std::printf("failed start stopped, started again\n");
}

/// A script thread that ignores the stop: its interpreter is left as it is,
/// finalize() returns false at its deadline instead of hanging, and SDK calls
/// are refused from then on.
void abandon_running_thread() {
    start(2);
    on_thread_in(1, [](size_t) {
        py::exec(
            "import threading\n"
            "stuck = threading.Event()\n"
            "threading.Thread(target=stuck.wait, name='stuck').start()\n");
    });
    const auto started = std::chrono::steady_clock::now();
    // Interpreter 1's thread would not stop (scripts.cpp's bounded join says so).
    const bool finalized = pool().finalize([](size_t index) { return index != 1; }, in_seconds(2));
    expect(!finalized, "the runtime is left running");
    expect(std::chrono::steady_clock::now() - started < std::chrono::seconds(10), "bounded");
    std::thread([] { expect(!pool().enter_sdk_call(), "SDK calls refused"); }).join();
    std::printf("left running, bounded\n");
    std::fflush(stdout);
    std::_Exit(0);  // a Python thread still runs: no static destructors
}

/// 64 threads attach to every interpreter; half exit before the stop (their
/// thread states go with them), half after it (finalize() reaps theirs).
void many_threads() {
    constexpr size_t interpreters = 4;
    constexpr int threads_count = 64;
    start(interpreters);
    std::mutex mutex;
    std::condition_variable changed;
    int attached = 0;
    bool stopped = false;
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_count; ++t) {
        threads.emplace_back([&, t] {
            for (size_t index = 0; index < interpreters; ++index) {
                attach_guard guard(pool(), index);
                expect(marker() == index, "the interpreter's globals");
            }
            std::unique_lock<std::mutex> lock(mutex);
            ++attached;
            changed.notify_all();
            if (t % 2 == 1) changed.wait(lock, [&] { return stopped; });
        });
    }
    {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return attached == threads_count; });
    }
    for (int t = 0; t < threads_count; t += 2) threads[t].join();
    std::vector<size_t> states(interpreters);
    std::thread([&] {
        for (size_t index = 0; index < interpreters; ++index) {
            attach_guard guard(pool(), index);
            states[index] = thread_states_here();
        }
    }).join();
    // The owner, the 32 waiting threads, this counting thread (gone by now, but
    // counted while it was attached).
    for (size_t count : states)
        expect(count == 1 + threads_count / 2 + 1, "states per interpreter");
    stop();
    {
        std::lock_guard<std::mutex> lock(mutex);
        stopped = true;
    }
    changed.notify_all();
    for (int t = 1; t < threads_count; t += 2) threads[t].join();
    std::printf("%d threads x %zu interpreters reaped\n", threads_count, interpreters);
}

/// Stop while a script thread is inside an SDK call (its GIL released):
/// finalize() waits for it and refuses new SDK calls from other threads meanwhile.
void stop_during_sdk_call() {
    start(2);
    PyInterpreterState* interp = nullptr;
    on_thread_in(1, [&](size_t) { interp = PyInterpreterState_Get(); });
    std::mutex mutex;
    std::condition_variable changed;
    bool inside = false;
    std::atomic<bool> returned{false};
    std::thread caller([&] {
        // A thread of the script: a thread state of its own, as `threading` makes.
        PyThreadState* own = PyThreadState_New(interp);
        PyEval_RestoreThread(own);
        expect(pool().enter_sdk_call(), "an SDK call while running");
        PyThreadState* saved = PyEval_SaveThread();
        {
            std::lock_guard<std::mutex> lock(mutex);
            inside = true;
        }
        changed.notify_all();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        PyEval_RestoreThread(saved);
        PyThreadState_Clear(own);
        PyThreadState_DeleteCurrent();
        returned = true;
        pool().leave_sdk_call();  // the thread is gone from the interpreter by now
    });
    {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return inside; });
    }
    bool refused = false;
    std::thread late([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // finalize() waits by now
        refused = !pool().enter_sdk_call();
        if (!refused) pool().leave_sdk_call();
    });
    const bool finalized = pool().finalize([](size_t) { return true; }, in_seconds(10));
    const bool waited = returned.load();
    caller.join();
    late.join();
    expect(finalized, "finalized once the SDK call returned");
    expect(refused, "a new SDK call during the stop is refused");
    expect(waited, "finalize() returned after the SDK call did");
    std::printf("stop waited for the SDK call\n");
}

/// finalize() on another thread than initialize()'s is refused and changes
/// nothing; on the right thread it then stops everything.
void stop_on_the_wrong_thread() {
    start(2);
    std::thread([] {
        try {
            pool().finalize([](size_t) { return true; }, in_seconds(10));
            expect(false, "refused on another thread");
        } catch (const std::logic_error&) {
        }
    }).join();
    expect(pool().running(), "still running");
    on_thread_in(1, [](size_t) { expect(marker() == 1, "still serving"); });
    stop();
    std::printf("stop on the wrong thread refused\n");
}

/// Orthanc's /tools/reset (stop, start) then a pybind11-bound class, on the
/// thread that stopped and started the runtime (prepare() runs there): the
/// runtime is finalized with Py_FinalizeEx, and pybind11 must find its
/// per-interpreter internals anew.
void reset_then_pybind11_class() {
    for (size_t count : {2, 1, 2}) {
        start_pool(count, [](size_t index) {
            py::object counter = py::module_::import("opm_probe").attr("Counter")();
            counter.attr("add")(index + 1);
            expect(counter.attr("total")().cast<size_t>() == index + 1, "the class works");
        });
        on_thread_in(0, [](size_t) {
            py::object counter = py::module_::import("opm_probe").attr("Counter")();
            counter.attr("add")(5);
            expect(counter.attr("total")().cast<size_t>() == 5, "from another thread");
        });
        stop();
        std::printf("pybind11 class with %zu interpreters ok\n", count);
    }
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
        {"restart-main", restart_main},
        {"main-alongside", main_alongside},
        {"fall-back", fall_back},
        {"prepare-error", prepare_error},
        {"abandon-running-thread", abandon_running_thread},
        {"many-threads", many_threads},
        {"stop-during-sdk-call", stop_during_sdk_call},
        {"reset-then-pybind11-class", reset_then_pybind11_class},
        {"stop-on-the-wrong-thread", stop_on_the_wrong_thread},
    };
    unsigned cpu_count = 0;
    const bool is_config = argc >= 2 && std::strcmp(argv[1], "config") == 0;
    if (is_config ? argc != 4 || !parse_count(argv[3], cpu_count)
                  : argc != 2 || scenarios.count(argv[1]) == 0) {
        std::fprintf(stderr,
                     "usage: %s SCENARIO (restart, nested-attach, ...: see main())\n"
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
