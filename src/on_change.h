// OnChange callbacks: queued by Orthanc's threads, delivered in order by one thread.
#pragma once

namespace opm {

/// Starts the delivery thread if a script registered an OnChange callback.
void start_on_change();

/// Delivers what is queued (ORTHANC_STOPPED included) and stops the thread.
/// Call before the interpreters stop; no GIL held.
void stop_on_change();

}  // namespace opm
