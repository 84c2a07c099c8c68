// Orthanc plugin entry points: read the configuration, start Python, run the
// script in each interpreter, and shut everything down at Finalize.

#include "callbacks.h"
#include "config.h"
#include "environment.h"
#include "errors.h"
#include "interpreter_pool.h"
#include "metrics.h"
#include "module.h"
#include "on_change.h"
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

plugin_config g_config;
bool g_active = false;

std::chrono::steady_clock::time_point stop_deadline() {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(thread_stop_timeout_s));
}

void stop_python() {
    // ORTHANC_STOPPED is delivered first, so scripts can stop their threads; a
    // backlog behind a slow callback gets as long as the threads do, no more.
    stop_on_change(stop_deadline());
    const auto deadline = stop_deadline();
    interpreter_pool::instance().finalize(
        [deadline](size_t index) { return stop_interpreter(index, deadline); }, deadline);
}

int32_t initialize(OrthancPluginContext* context) {
    set_context(context);
    const std::string sdk = std::to_string(ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER) + "." +
                            std::to_string(ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER) + "." +
                            std::to_string(ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER);
    if (OrthancPluginCheckVersion(context) == 0) {
        log_error("Python: this Orthanc (" + std::string(context->orthancVersion) +
                  ") is older than the Orthanc SDK " + sdk +
                  " the plugin was built with: the plugin does not start (build it against "
                  "this Orthanc's SDK, or upgrade Orthanc)");
        return -1;
    }
    log_warning("Python: version of the Orthanc SDK in use by the Python plugin: " + sdk +
                " (Orthanc " + context->orthancVersion + ", Python " PY_VERSION ")");
    set_description("Python scripts in parallel sub-interpreters (orthanc-python-multi)");

    g_config = read_config(context);
    if (g_config.script.empty() && !g_config.main_script.empty()) {
        // Nothing for sub-interpreters: the main interpreter alone runs it.
        g_config.script = g_config.main_script;
        g_config.main_script.clear();
        g_config.interpreters = 1;
    }
    if (g_config.script.empty()) {
        log_warning("Python: no PythonScript in the configuration, the plugin stays inactive");
        return 0;
    }
    if (!g_config.other_python_plugins.empty()) {
        log_error("Python: the configuration also loads " + g_config.other_python_plugins[0] +
                  " (the existing Python plugin); two embedded Pythons cannot share one Orthanc "
                  "process: remove it from \"Plugins\"");
        return -1;
    }
    const std::string other = other_libpython();
    if (Py_IsInitialized() || !other.empty()) {
        log_error("Python: another embedded Python (" + (other.empty() ? "this one" : other) +
                  ") is already running in this Orthanc process, probably the existing Python "
                  "plugin; load only one Python plugin");
        return -1;
    }

    promote_libpython();
    register_orthanc_module();
    reset_registrations();

    const python_environment env = find_environment(g_config.virtual_env);
    pool_options options;
    options.interpreters = g_config.interpreters;
    options.main_alongside = !g_config.main_script.empty();
    options.verbose = g_config.verbose;
    // The base Python the plugin was built with, unless it lives elsewhere here.
    options.home = g_config.home.empty() ? ORTHANC_PYTHON_MULTI_HOME : g_config.home;
    options.executable = env.executable;

    interpreter_pool& pool = interpreter_pool::instance();
    try {
        pool.initialize(
            options, [] { warm_up_main(g_config); },
            [&env](size_t index) { prepare_interpreter(index, env, g_config); },
            &discard_interpreter);
    } catch (const std::exception& error) {
        log_error(error.what());
        close_registration();
        stop_python();
        return -1;
    }
    close_registration();
    register_metrics();
    start_on_change();
    g_active = true;
    log_warning("Python: " + g_config.script + " runs in " +
                std::to_string(pool.script_interpreters()) +
                (pool.uses_main_interpreter() ? " interpreter (the main one)"
                                              : " sub-interpreters, each with its own GIL"));
    if (!g_config.main_script.empty())
        log_warning("Python: " + g_config.main_script + " runs in the main interpreter" +
                    (pool.main_alongside()
                         ? " (interpreter " + std::to_string(pool.size() - 1) + ")"
                         : std::string()));
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
    if (!opm::g_active) return;
    opm::g_active = false;
    try {
        opm::stop_python();
    } catch (const std::exception& error) {
        opm::log_error(std::string("Python: error at shutdown: ") + error.what());
    }
    // A thread left running (the runtime was not finalized) must not reach an
    // Orthanc that is going away: its SDK calls raise from now on.
    opm::interpreter_pool::instance().close_sdk_calls();
    opm::set_context(nullptr);
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() {
    return opm::plugin_name;
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() {
    return ORTHANC_PYTHON_MULTI_VERSION;
}

}  // extern "C"
