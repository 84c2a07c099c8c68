// The user's scripts in each interpreter: loading them (with the bootstrap
// module), and stopping the threads they started.

#include "scripts.h"

#include "callbacks.h"
#include "errors.h"
#include "interpreter_pool.h"
#include "on_change.h"
#include "plugin_state.h"
#include "py_bytes.h"

#include "bootstrap_py.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

// After Python.h (pybind11.h), which it needs.
#include <marshal.h>

#include <filesystem>
#include <string>
#include <vector>

namespace py = pybind11;
namespace fs = std::filesystem;

namespace opm {

namespace {

/// How long daemon threads of a sub-interpreter may take to end at stop.
constexpr double daemon_grace_s = 2.0;

/// The bootstrap's code object in the current interpreter (GIL held): the one compiled
/// at build time where this libpython reads its bytecode, else compiled from the text.
/// Compiled here, in every interpreter, it took time and left about 0.5 MiB behind in
/// each sub-interpreter (perf/costs.py).
py::object bootstrap_code() {
    if (PyImport_GetMagicNumber() == bootstrap_py_magic) {
        PyObject* code = PyMarshal_ReadObjectFromString(
            reinterpret_cast<const char*>(bootstrap_py_code), sizeof(bootstrap_py_code));
        if (code) return py::reinterpret_steal<py::object>(code);
        PyErr_Clear();  // a libpython that cannot read it after all: the text below
    }
    PyObject* code = Py_CompileString(bootstrap_py, bootstrap_py_file_name, Py_file_input);
    if (!code) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(code);
}

py::module_ load_bootstrap() {
    py::module_ module = py::reinterpret_steal<py::module_>(PyModule_New("_orthanc_python_multi"));
    if (!module) throw py::error_already_set();
    py::dict globals = module.attr("__dict__");
    if (!globals.contains("__builtins__"))
        globals["__builtins__"] = py::handle(PyEval_GetBuiltins());
    py::object code = bootstrap_code();
    PyObject* result = PyEval_EvalCode(code.ptr(), globals.ptr(), globals.ptr());
    if (!result) throw py::error_already_set();
    Py_DECREF(result);
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
        boot.attr("flush_log_streams")();
        throw script_error("Python: the script " + script +
                           " raised an exception while loading in interpreter " +
                           std::to_string(index) + ":\n" + traceback +
                           "\nPython: Orthanc does not start: fix the script (see the "
                           "traceback above)");
    }
}

/// Waits (bounded) for the threads of the current interpreter's script; returns
/// (threads, daemon threads) still running, their output flushed to the log.
py::tuple join_script_threads(double timeout, const py::object& daemon_grace) {
    py::tuple alive = bootstrap().attr("join_threads")(timeout, daemon_grace);
    bootstrap().attr("flush_log_streams")();
    return alive;
}

/// Names of threads, as one log line.
std::string thread_names(const py::list& names) {
    std::string text;
    for (py::handle name : names) text += " " + loggable_text(py::str(name));
    return text;
}

/// Logs a Python error met while `doing` something to interpreter `index`.
void log_stop_error(const char* doing, size_t index, const py::error_already_set& error) {
    log_error(std::string("Python: while ") + doing + " interpreter " + std::to_string(index) +
              ":\n" + format_exception(error));
}

}  // namespace

void prepare_interpreter(size_t index, const python_environment& env, const plugin_config& config) {
    const interpreter_pool& pool = state().pool;
    const bool sub_interpreter = !pool.is_main(index);
    std::vector<std::string> scripts;
    if (!sub_interpreter && !config.main_script.empty()) scripts.push_back(config.main_script);
    if (!pool.is_main_alongside(index)) scripts.push_back(config.script);
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

void warm_up_main(const plugin_config& config) {
    try {
        load_bootstrap().attr("warm_up")(config.script);
    } catch (const py::error_already_set& error) {
        throw script_error("Python: cannot prepare the main interpreter:\n" +
                           format_exception(error));
    }
}

bool stop_interpreter(size_t index, std::chrono::steady_clock::time_point deadline) {
    state().families.clear(index);
    try {
        const double left =
            std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
        // A sub-interpreter cannot end under a running daemon thread: those get a
        // short grace to finish stopping (their script stopped them on ORTHANC_STOPPED).
        py::object daemon_grace = state().pool.is_main(index)
                                      ? py::object(py::none())
                                      : py::object(py::float_(daemon_grace_s));
        py::tuple alive = join_script_threads(left > 0 ? left : 0.0, daemon_grace);
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
        log_stop_error("stopping", index, error);
        return true;
    }
}

bool discard_interpreter(size_t index) {
    notify_stopped(index);  // its threads stop as they would at Orthanc's stop
    state().families.clear(index);
    state().families.forget(index);
    try {
        py::tuple alive = join_script_threads(daemon_grace_s, py::float_(daemon_grace_s));
        return py::len(alive[0]) == 0 && py::len(alive[1]) == 0;
    } catch (const py::error_already_set& error) {
        log_stop_error("leaving", index, error);
        return false;
    }
}

}  // namespace opm
