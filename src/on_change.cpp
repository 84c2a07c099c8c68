#include "on_change.h"

#include "callbacks.h"
#include "orthanc_handwritten.h"
#include "py_bytes.h"

#include <algorithm>

namespace opm {

// RegisterOnChangeCallback's family and trampoline (on_change, below) are named in
// generator/manifest.toml (`registers`): the generated module defines it. Both
// scripts may register one (see deliver()).
const family<OrthancPluginErrorCode> g_on_change{
    "the OnChange callback", OrthancPluginErrorCode_Plugin, dispatch_policy::first_registered,
    family_scripts::both};

namespace {

/// Whether the script of the current interpreter runs threads of its own
/// (bootstrap.py, runs_own_threads); true when that cannot be told. GIL held.
bool runs_own_threads(size_t index) {
    try {
        return py::module_::import("_orthanc_python_multi").attr("runs_own_threads")().cast<bool>();
    } catch (const py::error_already_set& error) {
        report_error_in(index, g_on_change.what, error);
        return true;
    }
}

/// Calls the OnChange callbacks of interpreter `index` (its GIL held) with one
/// change; an exception is logged and the next callback still runs.
void call_callbacks(const callback_list& list, size_t index, const change& item) {
    py::str id = decode_text(item.id.c_str());
    for (const py::object& callback : list.of(index)) {
        try {
            callback(static_cast<int>(item.type), static_cast<int>(item.resource), id);
        } catch (const py::error_already_set& error) {
            report_error_in(index, g_on_change.what, error);
        }
    }
}

/// Every change goes to the first interpreter that registered, and to the main
/// interpreter too when PythonMainScript registered one alongside.
/// ORTHANC_STOPPED also goes to each other interpreter whose script still runs
/// threads of its own, so it can stop them; not to the others: they never saw
/// ORTHANC_STARTED, so what a script stops at ORTHANC_STOPPED (a server it started
/// then) is None there.
void deliver(const change& item) {
    plugin_state& current = state();
    const callback_list* list = current.families.find(g_on_change);
    if (list == nullptr) return;
    const std::vector<size_t>& registered = list->interpreters();
    const bool stopped = item.type == OrthancPluginChangeType_OrthancStopped;
    for (size_t k = 0; k < registered.size(); ++k) {
        const size_t index = registered[k];
        const bool every_change = k == 0 || current.pool.is_main_alongside(index);
        if (!every_change && !stopped) continue;
        call_in(index, g_on_change.what, false, [&] {
            if (every_change || runs_own_threads(index)) call_callbacks(*list, index, item);
            return true;
        });
    }
}

}  // namespace

void change_queue::push(change item) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(std::move(item));
    }
    ready_.notify_one();
}

void change_queue::start() {
    if (state().families.find(g_on_change) == nullptr || worker_.joinable()) return;
    stopping_ = false;
    worker_ = std::thread([this] { run(); });
}

void change_queue::stop(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        deadline_ = deadline;
    }
    ready_.notify_one();
    if (worker_.joinable()) worker_.join();
}

void change_queue::run() {
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

void change_queue::drop_late_changes() {
    const size_t before = queue_.size();
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [](const change& item) {
                                    return item.type != OrthancPluginChangeType_OrthancStopped;
                                }),
                 queue_.end());
    if (queue_.size() != before)
        log_warning("Python: Orthanc is stopping: " + std::to_string(before - queue_.size()) +
                    " changes not delivered to the OnChange callback in time were dropped");
}

OrthancPluginErrorCode on_change(OrthancPluginChangeType type, OrthancPluginResourceType resource,
                                 const char* id) {
    try {
        state().changes.push({type, resource, id ? id : ""});
        return OrthancPluginErrorCode_Success;
    } catch (const std::exception& error) {
        log_error(std::string("Python: cannot queue a change: ") + error.what());
        return OrthancPluginErrorCode_NotEnoughMemory;
    }
}

void notify_stopped(size_t index) {
    // Given up before ORTHANC_STARTED: as deliver() does for such an interpreter.
    const callback_list* list = state().families.find(g_on_change);
    if (list == nullptr || !list->registered_in(index) || !runs_own_threads(index)) return;
    call_callbacks(*list, index,
                   {OrthancPluginChangeType_OrthancStopped, OrthancPluginResourceType_None, ""});
}

}  // namespace opm
