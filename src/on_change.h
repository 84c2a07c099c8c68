// OnChange callbacks: queued by Orthanc's threads, delivered in order by one thread.
#pragma once

#include <chrono>
#include <cstddef>

namespace opm {

/// Starts the delivery thread if a script registered an OnChange callback.
void start_on_change();

/// Delivers what is queued until `deadline`, drops the rest (logged, except
/// ORTHANC_STOPPED, always delivered) and stops the thread. Call before the
/// interpreters stop; no GIL held.
void stop_on_change(std::chrono::steady_clock::time_point deadline);

/// Calls the OnChange callbacks of interpreter `index` with ORTHANC_STOPPED, now,
/// with its GIL held, when its script runs threads of its own: for a
/// sub-interpreter given up at start-up (a fall-back to the main interpreter), so
/// that the threads its script started can stop.
void notify_stopped(size_t index);

}  // namespace opm
