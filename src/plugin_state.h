// The state of one run of the plugin, from OrthancPluginInitialize to
// OrthancPluginFinalize, and the one pointer through which callbacks reach it.
#pragma once

#include "config.h"
#include "interpreter_pool.h"
#include "on_change.h"
#include "registry.h"

#include <atomic>

namespace opm {

/// Everything one run of the plugin owns: the configuration, the interpreters,
/// every family's registrations (REST routes included), the OnChange queue.
///
/// - Created by start_state() in OrthancPluginInitialize, ended by end_state() in
///   OrthancPluginFinalize, both on Orthanc's main thread. Orthanc's /tools/reset
///   does both again in the same process: a new state each time, and the previous
///   one is destroyed then.
/// - Any thread reaches the current one through state(), lock-free. An ended state
///   stays current until the next start: a thread that outlived the stop (a daemon
///   thread of the script, still unwinding) may still read its pool, which refuses
///   every call by then. At process exit it is left to the operating system.
/// - When the Python runtime is left running at stop (a thread of the script
///   would not end), the state is never destroyed: its registrations hold Python
///   objects that no interpreter can drop any more.
struct plugin_state : no_copy {
    plugin_config config;
    interpreter_pool pool;
    family_registry families;
    change_queue changes;
    /// Orthanc accepts callback registrations only during plugin initialization.
    std::atomic<bool> registration_open{true};
    /// Set by end_state() (Orthanc's main thread): the run is over.
    bool ended = false;
    /// With `ended`: the Python runtime was finalized, so the state may be destroyed.
    bool finalized = false;
};

/// The current state (perhaps ended); throws std::logic_error before the first start.
plugin_state& state();
/// The current state (perhaps ended), or nullptr.
plugin_state* current_state();

/// Creates the state of a new run and makes it current; destroys the previous
/// one if its runtime was finalized.
plugin_state& start_state(plugin_config config);
/// Ends the current run; `finalized`: its Python runtime is gone.
void end_state(bool finalized);

}  // namespace opm
