// Orthanc plugin entry points: read the configuration, start Python, run the
// script in each interpreter, and shut everything down at Finalize.

#include "callbacks.h"
#include "config.h"
#include "environment.h"
#include "errors.h"
#include "interpreter_pool.h"
#include "metrics.h"
#include "module.h"
#include "plugin_state.h"
#include "py_bytes.h"
#include "scripts.h"
#include "sdk.h"

#include <pybind11/pybind11.h>

#include <cxxabi.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace opm {

namespace {

constexpr const char* plugin_name = "python";

void set_description(const char* text) {
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 4)
    OrthancPluginSetDescription2(context(), plugin_name, text);  // the other is deprecated
#else
    OrthancPluginSetDescription(context(), text);
#endif
}

std::chrono::steady_clock::time_point stop_deadline() {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(thread_stop_timeout_s));
}

/// Stops the scripts and Python, then ends the state (kept for good when the
/// runtime is left running). Orthanc's main thread, no GIL held.
void stop_python(plugin_state& current) {
    // ORTHANC_STOPPED is delivered first, so scripts can stop their threads; a
    // backlog behind a slow callback gets as long as the threads do, no more.
    current.changes.stop(stop_deadline());
    const auto deadline = stop_deadline();
    const bool finalized = current.pool.finalize(
        [deadline](size_t index) { return stop_interpreter(index, deadline); }, deadline);
    // A thread left running (the runtime was not finalized) must not reach an
    // Orthanc that is going away: its SDK calls raise from now on.
    current.pool.close_sdk_calls();
    end_state(finalized);
}

/// False (logged) when this Orthanc cannot run the plugin.
bool check_orthanc(OrthancPluginContext* context, const std::string& sdk) {
    if (OrthancPluginCheckVersion(context) != 0) return true;
    log_error("Python: this Orthanc (" + std::string(context->orthancVersion) +
              ") is older than the Orthanc SDK " + sdk +
              " the plugin was built with: the plugin does not start (build it against "
              "this Orthanc's SDK, or upgrade Orthanc)");
    return false;
}

/// False (logged) when another embedded Python shares this process.
bool check_alone(const plugin_config& config) {
    if (!config.other_python_plugins.empty()) {
        log_error("Python: the configuration also loads " + config.other_python_plugins[0] +
                  " (the existing Python plugin); two embedded Pythons cannot share one Orthanc "
                  "process: remove it from \"Plugins\"");
        return false;
    }
    const std::string other = other_libpython();
    if (Py_IsInitialized() || !other.empty()) {
        log_error("Python: another embedded Python (" + (other.empty() ? "this one" : other) +
                  ") is already running in this Orthanc process, probably the existing Python "
                  "plugin; load only one Python plugin");
        return false;
    }
    return true;
}

/// Creates the interpreters and runs the scripts in them; the state's pool is new.
void start_python(plugin_state& current) {
    const plugin_config& config = current.config;
    const python_environment env = find_environment(config.virtual_env);
    pool_options options;
    options.interpreters = config.interpreters;
    options.main_alongside = !config.main_script.empty();
    options.verbose = config.verbose;
    // The base Python the plugin was built with, unless it lives elsewhere here.
    options.home = config.home.empty() ? ORTHANC_PYTHON_MULTI_HOME : config.home;
    options.executable = env.executable;
    current.pool.initialize(
        options, [&config] { warm_up_main(config); },
        [&env, &config](size_t index) { prepare_interpreter(index, env, config); },
        &discard_interpreter);
}

void log_started(const plugin_state& current) {
    const plugin_config& config = current.config;
    const interpreter_pool& pool = current.pool;
    log_warning("Python: " + config.script + " runs in " +
                std::to_string(pool.script_interpreters()) +
                (pool.uses_main_interpreter() ? " interpreter (the main one)"
                                              : " sub-interpreters, each with its own GIL"));
    if (!config.main_script.empty())
        log_warning("Python: " + config.main_script + " runs in the main interpreter" +
                    (pool.main_alongside()
                         ? " (interpreter " + std::to_string(pool.size() - 1) + ")"
                         : std::string()));
}

int32_t initialize(OrthancPluginContext* context) {
    set_context(context);
    const std::string sdk = std::to_string(ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER) + "." +
                            std::to_string(ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER) + "." +
                            std::to_string(ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
    if (!check_orthanc(context, sdk)) return -1;
    log_warning("Python: version of the Orthanc SDK in use by the Python plugin: " + sdk +
                " (Orthanc " + context->orthancVersion + ", Python " PY_VERSION ")");
    set_description("Python scripts in parallel sub-interpreters (orthanc-python-multi)");

    plugin_config config = read_config(context);
    if (config.script.empty() && !config.main_script.empty()) {
        // Nothing for sub-interpreters: the main interpreter alone runs it.
        config.script = config.main_script;
        config.main_script.clear();
        config.interpreters = 1;
    }
    if (config.script.empty()) {
        log_warning("Python: no PythonScript in the configuration, the plugin stays inactive");
        return 0;
    }
    if (!check_alone(config)) return -1;

    promote_libpython();
    register_orthanc_module();
    plugin_state& current = start_state(std::move(config));
    try {
        start_python(current);
    } catch (const std::exception& error) {
        log_error(error.what());
        current.registration_open.store(false);
        stop_python(current);
        return -1;
    }
    current.registration_open.store(false);
    register_metrics();
    current.changes.start();
    log_started(current);
    return 0;
}

}  // namespace

}  // namespace opm

extern "C" {

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
    try {
        return opm::initialize(context);
    } catch (const abi::__forced_unwind&) {
        throw;  // pthread_exit: swallowing it aborts the process
    } catch (const std::exception& error) {
        opm::log_error(std::string("Python: ") + error.what());
    } catch (...) {
        opm::log_error("Python: unknown error at initialization");
    }
    return -1;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize() {
    opm::plugin_state* current = opm::current_state();
    if (current == nullptr || current->ended) return;  // inactive, or it did not start
    try {
        opm::stop_python(*current);
    } catch (const std::exception& error) {
        opm::log_error(std::string("Python: error at shutdown: ") + error.what());
    }
    opm::set_context(nullptr);
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() {
    return opm::plugin_name;
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() {
    return ORTHANC_PYTHON_MULTI_VERSION;
}

}  // extern "C"
