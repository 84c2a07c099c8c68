// Orthanc plugin entry points: read the configuration, start Python, run the
// script in each interpreter, and shut everything down at Finalize.

#include "callbacks.h"
#include "config.h"
#include "errors.h"
#include "interpreter_pool.h"
#include "metrics.h"
#include "module.h"
#include "on_change.h"
#include "py_bytes.h"
#include "rest.h"
#include "sdk.h"

#include "bootstrap_py.h"

#include <pybind11/eval.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;
namespace fs = std::filesystem;

namespace opm {

namespace {

constexpr const char* plugin_name = "python";
constexpr double thread_stop_timeout_s = 10.0;
/// How long daemon threads of a sub-interpreter may take to end at stop.
constexpr double daemon_grace_s = 2.0;

void set_description(const char* text) {
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 4)
    OrthancPluginSetDescription2(context(), plugin_name, text);  // the other is deprecated
#else
    OrthancPluginSetDescription(context(), text);
#endif
}

/// The script failed to load; the message holds the traceback and what to do.
class script_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

plugin_config g_config;
bool g_active = false;

/// Where this plugin file lies, for finding the environment it was installed in.
fs::path plugin_file() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&plugin_file), &info) == 0 || info.dli_fname == nullptr)
        return {};
    return fs::path(info.dli_fname);
}

/// The environment the plugin was installed into: site-packages holds
/// orthanc_python_multi/lib/<this file>, and a virtual environment has pyvenv.cfg.
struct environment {
    std::vector<std::string> site_dirs;
    std::string executable;
};

/// The virtual environment named by PythonVirtualEnv: a venv of this Python version.
environment configured_environment(const std::string& folder) {
    const fs::path root(folder);
    const std::string version =
        "python" + std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);
    const fs::path site = root / "lib" / version / "site-packages";
    std::error_code ec;
    if (!fs::is_directory(site, ec))
        throw config_error("PythonVirtualEnv: " + folder + " has no lib/" + version +
                           "/site-packages (a virtual environment of Python " +
                           std::to_string(PY_MAJOR_VERSION) + "." +
                           std::to_string(PY_MINOR_VERSION) + " is needed)");
    environment env;
    env.site_dirs.push_back(site.string());
    if (fs::exists(root / "bin" / "python3", ec))
        env.executable = (root / "bin" / "python3").string();
    return env;
}

/// The environment the plugin was installed into, unless PythonVirtualEnv names another.
environment find_environment() {
    if (!g_config.virtual_env.empty()) return configured_environment(g_config.virtual_env);
    environment env;
    const fs::path package = plugin_file().parent_path().parent_path();
    const fs::path site = package.parent_path();
    if (package.filename() != "orthanc_python_multi" || site.filename() != "site-packages")
        return env;  // a build tree: only the base installation
    env.site_dirs.push_back(site.string());
    const fs::path prefix = site.parent_path().parent_path().parent_path();
    std::error_code ec;
    if (fs::exists(prefix / "pyvenv.cfg", ec) && fs::exists(prefix / "bin" / "python3", ec))
        env.executable = (prefix / "bin" / "python3").string();
    return env;
}

/// Orthanc loads plugins with RTLD_LOCAL: extension modules (math, via datetime)
/// then fail with "undefined symbol: PyFloat_Type". Re-open libpython globally.
void promote_libpython() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) != 0 &&
        info.dli_fname != nullptr) {
        if (dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr)
            log_warning(std::string("Python: cannot re-open ") + info.dli_fname + " globally");
    }
}

/// Another libpython in the process (the existing Python plugin): two embedded
/// Pythons abort the process, so refuse instead.
std::string other_libpython() {
    Dl_info info{};
    std::string ours;
    if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) != 0 && info.dli_fname)
        ours = fs::weakly_canonical(info.dli_fname).string();
    struct search {
        std::string ours;
        std::string found;
    } state{ours, {}};
    dl_iterate_phdr(
        [](dl_phdr_info* object, size_t, void* data) {
            auto* s = static_cast<search*>(data);
            const char* name = object->dlpi_name;
            if (name == nullptr || std::strstr(name, "libpython") == nullptr) return 0;
            std::error_code ec;
            if (fs::weakly_canonical(name, ec).string() != s->ours) {
                s->found = name;
                return 1;
            }
            return 0;
        },
        &state);
    return state.found;
}

py::module_ load_bootstrap() {
    py::module_ module = py::reinterpret_steal<py::module_>(PyModule_New("_orthanc_python_multi"));
    if (!module) throw py::error_already_set();
    py::exec(bootstrap_py, module.attr("__dict__"));
    py::module_::import("sys").attr("modules")["_orthanc_python_multi"] = module;
    return module;
}

py::module_ bootstrap() {
    return py::module_::import("_orthanc_python_multi");
}

/// Runs `script` in the current interpreter `index` (GIL held), the bootstrap
/// module `boot` already loaded there.
void run_script(py::module_& boot, size_t index, const std::string& script, bool sub_interpreter) {
    try {
        boot.attr("load_script")(script);
    } catch (const py::error_already_set& error) {
        const std::string traceback = format_exception(error);
        if (sub_interpreter) {
            py::object refusal = boot.attr("subinterpreter_refusal")(error.value());
            if (!refusal.is_none()) {
                boot.attr("flush_log_streams")();
                log_info("Python: the script in interpreter " + std::to_string(index) + ":\n" +
                         traceback);
                throw needs_main_interpreter(
                    "Python: " + script + " " + loggable_text(py::str(refusal)) +
                    ": the script runs in the main interpreter alone, as with "
                    "\"PythonInterpreters\": 1 (to use several cores, move the code that "
                    "needs it to the script of \"PythonMainScript\", see docs/imaging.md; or "
                    "set \"PythonInterpreters\": 1)");
            }
        }
        const std::string advice =
            loggable_text(boot.attr("explain_load_failure")(error.value(), g_config.interpreters));
        boot.attr("flush_log_streams")();
        throw script_error("Python: the script " + script +
                           " raised an exception while loading in interpreter " +
                           std::to_string(index) + ":\n" + traceback +
                           "\nPython: Orthanc does not start: " + advice);
    }
}

/// Runs in each interpreter (GIL held): log streams, paths, then the scripts:
/// PythonScript in the sub-interpreters, PythonMainScript in the main interpreter
/// alongside them, both (PythonMainScript first) when the main interpreter is the
/// only one.
void prepare_interpreter(size_t index, const environment& env) {
    interpreter_pool& pool = interpreter_pool::instance();
    const bool sub_interpreter = !pool.is_main(index);
    std::vector<std::string> scripts;
    if (!sub_interpreter && !g_config.main_script.empty()) scripts.push_back(g_config.main_script);
    if (!pool.is_main_alongside(index)) scripts.push_back(g_config.script);
    try {
        py::module_ boot = load_bootstrap();
        boot.attr("install_log_streams")();
        for (auto script = scripts.rbegin(); script != scripts.rend(); ++script)
            boot.attr("prepare_paths")(env.site_dirs, fs::path(*script).parent_path().string());
        if (sub_interpreter) boot.attr("install_import_guard")();
        for (const std::string& script : scripts) run_script(boot, index, script, sub_interpreter);
        boot.attr("flush_log_streams")();
    } catch (const py::error_already_set& error) {
        throw script_error("Python: cannot prepare interpreter " + std::to_string(index) + ":\n" +
                           format_exception(error));
    }
}

/// Imports the script's standard modules in the main interpreter (GIL held).
void warm_up_main() {
    try {
        load_bootstrap().attr("warm_up")(g_config.script);
    } catch (const py::error_already_set& error) {
        throw script_error("Python: cannot prepare the main interpreter:\n" +
                           format_exception(error));
    }
}

/// Names of threads, as one log line.
std::string thread_names(const py::list& names) {
    std::string text;
    for (py::handle name : names) text += " " + loggable_text(py::str(name));
    return text;
}

/// Drops everything this interpreter registered and waits (bounded) for the
/// script's threads. Returns false when some thread would not stop. GIL held.
bool stop_interpreter(size_t index, std::chrono::steady_clock::time_point deadline) {
    finalize_rest(index);
    clear_all_callbacks(index);
    try {
        const double left =
            std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
        // A sub-interpreter cannot end under a running daemon thread: those get a
        // short grace to finish stopping (their script stopped them on ORTHANC_STOPPED).
        py::object daemon_grace = interpreter_pool::instance().is_main(index)
                                      ? py::object(py::none())
                                      : py::object(py::float_(daemon_grace_s));
        py::tuple alive = bootstrap().attr("join_threads")(left > 0 ? left : 0.0, daemon_grace);
        bootstrap().attr("flush_log_streams")();
        const py::list threads = alive[0];
        const py::list daemons = alive[1];
        if (!threads.empty())
            log_error("Python: threads of interpreter " + std::to_string(index) +
                      " still run after " +
                      std::to_string(static_cast<int>(thread_stop_timeout_s)) +
                      " s:" + thread_names(threads) + " (stop them on ORTHANC_STOPPED)");
        if (!daemons.empty())
            log_warning("Python: daemon threads of interpreter " + std::to_string(index) +
                        " still run at stop:" + thread_names(daemons) +
                        "; that interpreter is left running so that Orthanc can exit (stop "
                        "them on ORTHANC_STOPPED to end it cleanly)");
        return threads.empty() && daemons.empty();
    } catch (const py::error_already_set& error) {
        log_error("Python: while stopping interpreter " + std::to_string(index) + ":\n" +
                  format_exception(error));
        return true;
    }
}

/// A sub-interpreter given up for the main one while the scripts load (GIL held):
/// drops and forgets its registrations, waits a little for its threads.
bool discard_interpreter(size_t index) {
    finalize_rest(index);
    clear_all_callbacks(index);
    forget_all_callbacks(index);
    try {
        py::tuple alive = bootstrap().attr("join_threads")(daemon_grace_s, daemon_grace_s);
        bootstrap().attr("flush_log_streams")();
        return py::len(alive[0]) == 0 && py::len(alive[1]) == 0;
    } catch (const py::error_already_set& error) {
        log_error("Python: while leaving interpreter " + std::to_string(index) + ":\n" +
                  format_exception(error));
        return false;
    }
}

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
    reset_rest();

    const environment env = find_environment();
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
            options, &warm_up_main, [&env](size_t index) { prepare_interpreter(index, env); },
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
