// The user's scripts in each interpreter: loading them, and stopping the
// threads they started.
#pragma once

#include "config.h"
#include "environment.h"

#include <chrono>
#include <cstddef>
#include <stdexcept>

namespace opm {

/// How long the scripts' threads may take to stop at Finalize.
constexpr double thread_stop_timeout_s = 10.0;

/// The script failed to load; the message holds the traceback and what to do.
class script_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Imports the script's standard modules in the main interpreter (GIL held),
/// before any sub-interpreter exists.
void warm_up_main(const plugin_config& config);

/// Runs in each interpreter (GIL held): log streams, paths, then the scripts:
/// PythonScript in the sub-interpreters, PythonMainScript in the main interpreter
/// alongside them, both (PythonMainScript first) when the main interpreter is the
/// only one. Throws script_error, or needs_main_interpreter when a module refuses
/// a sub-interpreter.
void prepare_interpreter(size_t index, const python_environment& env, const plugin_config& config);

/// Drops everything interpreter `index` registered and waits (until `deadline`)
/// for the script's threads. Returns false when some thread would not stop. GIL held.
bool stop_interpreter(size_t index, std::chrono::steady_clock::time_point deadline);

/// A sub-interpreter given up for the main one while the scripts load (GIL held):
/// drops and forgets its registrations, waits a little for its threads.
bool discard_interpreter(size_t index);

}  // namespace opm
