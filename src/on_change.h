// OnChange callbacks: queued by Orthanc's threads, delivered in order by one thread.
#pragma once

#include <orthanc/OrthancCPlugin.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace opm {

/// One change as Orthanc reported it.
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
/// - stop() before destruction when start() was called.
class change_queue {
public:
    void push(change item);
    /// Starts the delivery thread if a script registered an OnChange callback.
    void start();
    /// Delivers what is queued until `deadline`, drops the rest (logged, except
    /// ORTHANC_STOPPED, always delivered) and stops the thread. Call before the
    /// interpreters stop; no GIL held.
    void stop(std::chrono::steady_clock::time_point deadline);

private:
    void run();
    /// Keeps only ORTHANC_STOPPED (the scripts stop their threads on it). Lock held.
    void drop_late_changes();

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<change> queue_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point deadline_;
    std::thread worker_;
};

/// Calls the OnChange callbacks of interpreter `index` with ORTHANC_STOPPED, now,
/// with its GIL held, when its script runs threads of its own: for a
/// sub-interpreter given up at start-up (a fall-back to the main interpreter), so
/// that the threads its script started can stop.
void notify_stopped(size_t index);

}  // namespace opm
