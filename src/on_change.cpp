#include "on_change.h"

#include "callbacks.h"
#include "orthanc_handwritten.h"
#include "py_bytes.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace opm {

// RegisterOnChangeCallback's callback list and trampoline (on_change, below) are
// named in generator/manifest.toml (`registers`): the generated module defines it.
callback_list g_on_change{family_scripts::both};

namespace {

/// Whether the script of the current interpreter runs threads of its own
/// (bootstrap.py, runs_own_threads); true when that cannot be told. GIL held.
bool runs_own_threads() {
    try {
        return py::module_::import("_orthanc_python_multi").attr("runs_own_threads")().cast<bool>();
    } catch (const py::error_already_set& error) {
        report_callback_error("the OnChange callback", error);
        return true;
    }
}

struct change {
    OrthancPluginChangeType type;
    OrthancPluginResourceType resource;
    std::string id;
};

/// Changes waiting for delivery. Orthanc's threads only push (no GIL, no
/// Python), so a callback that calls back into Orthanc cannot deadlock them;
/// one thread delivers the changes in order, as the existing plugin does.
///
/// - push() from any thread; start() and stop() from Orthanc's main thread.
class change_queue {
public:
    void push(change item) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            queue_.push_back(std::move(item));
        }
        ready_.notify_one();
    }

    void start() {
        stopping_ = false;
        worker_ = std::thread([this] { run(); });
    }

    /// Delivers what is queued until `deadline`, then drops the rest (logged)
    /// but still delivers ORTHANC_STOPPED; returns when the worker has ended.
    void stop(std::chrono::steady_clock::time_point deadline) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
            deadline_ = deadline;
        }
        ready_.notify_one();
        if (worker_.joinable()) worker_.join();
    }

private:
    void run() {
        for (;;) {
            change item;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (stopping_ && std::chrono::steady_clock::now() >= deadline_) drop_late_changes();
                if (queue_.empty()) return;  // stopping, and everything delivered
                item = std::move(queue_.front());
                queue_.pop_front();
            }
            deliver(item);
        }
    }

    /// Keeps only ORTHANC_STOPPED (the scripts stop their threads on it). Lock held.
    void drop_late_changes() {
        const auto stopped = [](const change& item) {
            return item.type == OrthancPluginChangeType_OrthancStopped;
        };
        const size_t before = queue_.size();
        queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                    [&](const change& item) { return !stopped(item); }),
                     queue_.end());
        if (queue_.size() != before)
            log_warning("Python: Orthanc is stopping: " + std::to_string(before - queue_.size()) +
                        " changes not delivered to the OnChange callback in time were dropped");
    }

    static void deliver(const change& item) {
        // Every change goes to the first interpreter that registered, and to the
        // main interpreter too when PythonMainScript registered one alongside.
        // ORTHANC_STOPPED also goes to each other interpreter whose script still
        // runs threads of its own, so it can stop them; not to the others: they
        // never saw ORTHANC_STARTED, so what a script stops at ORTHANC_STOPPED
        // (a server it started then) is None there.
        interpreter_pool& pool = interpreter_pool::instance();
        const std::vector<size_t>& registered = g_on_change.interpreters();
        const bool stopped = item.type == OrthancPluginChangeType_OrthancStopped;
        for (size_t k = 0; k < registered.size(); ++k) {
            const size_t index = registered[k];
            const bool every_change = k == 0 || pool.is_main_alongside(index);
            if (!every_change && !stopped) continue;
            call_in(index, "the OnChange callback", false, [&] {
                if (!every_change && !runs_own_threads()) return true;
                py::str id = decode_text(item.id.c_str());
                for (const py::object& callback : g_on_change.of(index)) {
                    try {
                        callback(static_cast<int>(item.type), static_cast<int>(item.resource), id);
                    } catch (const py::error_already_set& error) {
                        report_callback_error("the OnChange callback", error);
                    }
                }
                return true;
            });
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<change> queue_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point deadline_;
    std::thread worker_;
};

change_queue g_queue;
bool g_started = false;

}  // namespace

OrthancPluginErrorCode on_change(OrthancPluginChangeType type, OrthancPluginResourceType resource,
                                 const char* id) {
    try {
        g_queue.push({type, resource, id ? id : ""});
        return OrthancPluginErrorCode_Success;
    } catch (const std::exception& error) {
        log_error(std::string("Python: cannot queue a change: ") + error.what());
        return OrthancPluginErrorCode_NotEnoughMemory;
    }
}

void start_on_change() {
    if (g_on_change.empty() || g_started) return;
    g_queue.start();
    g_started = true;
}

void stop_on_change(std::chrono::steady_clock::time_point deadline) {
    if (!g_started) return;
    g_queue.stop(deadline);
    g_started = false;
}

void notify_stopped(size_t index) {
    // Given up before ORTHANC_STARTED: as deliver() does for such an interpreter.
    if (!g_on_change.registered_in(index) || !runs_own_threads()) return;
    for (const py::object& callback : g_on_change.of(index)) {
        try {
            callback(static_cast<int>(OrthancPluginChangeType_OrthancStopped),
                     static_cast<int>(OrthancPluginResourceType_None), py::str(""));
        } catch (const py::error_already_set& error) {
            report_callback_error("the OnChange callback", error);
        }
    }
}

}  // namespace opm
