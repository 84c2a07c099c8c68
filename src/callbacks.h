// What every callback family shares: the registered callables, per interpreter,
// and running a call in a chosen interpreter.
#pragma once

#include "errors.h"
#include "interpreter_pool.h"
#include "no_copy.h"
#include "orthanc_handwritten.h"
#include "plugin_state.h"
#include "py_bytes.h"
#include "registry.h"
#include "sdk.h"

#include <pybind11/pybind11.h>

#include <cxxabi.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace opm {

namespace py = pybind11;

/// Raises unless the scripts are still loading: Orthanc accepts callback
/// registrations only during plugin initialization.
void check_registration_open(const char* function);

/// Raises unless interpreters `a` and `b` run the same script (both PythonScript,
/// or the same main interpreter): for families only one script may register.
void check_same_script(const char* function, size_t a, size_t b);

/// Copies a bytes-like object (or a str, as UTF-8) into a buffer that Orthanc
/// allocates and frees; raises when it cannot allocate, naming `what`. GIL held.
void fill_buffer(OrthancPluginMemoryBuffer* target, py::handle data, const char* what);
void fill_buffer(OrthancPluginMemoryBuffer64* target, py::handle data, const char* what);

/// Makes a parameter's type come from the other parameters (a braced entry).
template <typename T>
struct non_deduced {
    using type = T;
};

/// The entries of the usual family, as dispatch() hands them to a trampoline.
using callables = std::vector<py::object>;

/// Logs `what` and the traceback of `error` (raised in interpreter `index`, its
/// GIL held), counts the error; returns the code for Orthanc.
OrthancPluginErrorCode report_error_in(size_t index, const char* what,
                                       const py::error_already_set& error);

/// Around every SDK call: raises orthanc.OrthancException once the plugin is
/// stopping (GIL held), else counts the call and releases the GIL for its
/// lifetime, so Orthanc may call back into any interpreter meanwhile.
class sdk_call : no_copy {
public:
    sdk_call();
    ~sdk_call() noexcept(false);

private:
    interpreter_pool& pool_;
    PyThreadState* state_;
};

/// Runs `call` (SDK calls only, no Python) inside an sdk_call and returns what
/// it returns: `check_sdk(without_gil([&] { return OrthancPlugin...(...); }))`.
template <typename Call>
decltype(auto) without_gil(Call&& call) {
    sdk_call unlocked;
    return call();
}

/// What a call reports its errors under when the name depends on the call
/// ("the REST callback for " + url): joined only when an error is logged, not on
/// every request.
struct call_name {
    const char* prefix;
    const char* subject;
};

inline std::string describe(const char* what) {
    return what;
}
inline std::string describe(const call_name& what) {
    return std::string(what.prefix) + what.subject;
}

/// Runs `body()` in interpreter `index` (attached, counted in flight). A Python
/// exception is logged with its traceback under `what` (a C string or a
/// call_name) and turns into
/// `on_error` (into its Orthanc error code when Result is an error code); so
/// does a C++ exception. Throws nothing but abi::__forced_unwind (pthread_exit
/// must unwind: swallowing it aborts the process).
template <typename Result, typename Body, typename What>
Result call_in(size_t index, const What& what, Result on_error, Body&& body) {
    try {
        plugin_state* current = current_state();
        if (current == nullptr) return on_error;  // after the plugin stopped
        interpreter_pool& pool = current->pool;
        if (index >= pool.size()) throw std::logic_error("no interpreter registered it");
        // Counted first, then checked: finalize() waits for what it did not refuse.
        in_flight_scope busy(pool, index);
        if (!pool.running()) return on_error;
        attach_guard attached(pool, index);
        try {
            return body();
        } catch (const py::error_already_set& error) {
            const OrthancPluginErrorCode code =
                report_error_in(index, describe(what).c_str(), error);
            if constexpr (std::is_same_v<Result, OrthancPluginErrorCode>) return code;
        } catch (const std::exception& error) {
            log_error("Python: " + describe(what) + ": " + error.what());
        }
    } catch (const abi::__forced_unwind&) {
        throw;
    } catch (const std::exception& error) {
        log_error("Python: internal error in " + describe(what) + ": " + error.what());
    } catch (...) {
        log_error("Python: unknown internal error in " + describe(what));
    }
    return on_error;
}

/// Drops Python objects that belong to interpreter `index` with its GIL held,
/// for C++ state pinned to an interpreter (a C-MOVE driver, a job, a chunked
/// request reader). Once that interpreter has stopped they cannot be released
/// any more: they are leaked (the process is exiting).
template <typename... Objects>
void drop_in(size_t index, const char* what, Objects&... objects) {
    const bool dropped = call_in(index, what, false, [&] {
        (py::object(std::move(objects)), ...);  // each temporary dies here, GIL held
        return true;
    });
    if (!dropped) (objects.release(), ...);
}

/// Calls `body(entries, index)` in the interpreter that `policy` picks among those
/// of `list` (null: none registered, the call fails), with the entries that
/// interpreter registered, through call_in (an error becomes `on_error`, logged).
/// Any thread, no GIL held.
template <typename Result, typename Entry, typename What, typename Body>
Result dispatch_to(callback_list_of<Entry>* list, dispatch_policy policy, const What& what,
                   Result on_error, Body&& body) {
    const size_t index = list ? list->pick(policy) : no_interpreter;
    return call_in(index, what, on_error, [&] { return body(list->of(index), index); });
}

/// dispatch_to for family `f`: the whole of a trampoline. `what` names this call
/// of the family in the log (a storage area's read).
template <typename Result, typename Entry, typename Body>
Result dispatch(const family<Result, Entry>& f, const char* what, Body&& body) {
    plugin_state* current = current_state();
    // Refused until the pool runs: the scripts are still adding families to the
    // registry, which is read without a lock only once they are done.
    if (current == nullptr || !current->pool.running()) return f.on_error;
    return dispatch_to(current->families.find(f), f.policy, what, f.on_error,
                       std::forward<Body>(body));
}

template <typename Result, typename Entry, typename Body>
Result dispatch(const family<Result, Entry>& f, Body&& body) {
    return dispatch(f, f.what, std::forward<Body>(body));
}

/// Records `entry` for family `f` in the current interpreter (see
/// callback_registrations::record); the family's first registration also runs
/// `register_with_orthanc()`, which registers its C callback. GIL held.
template <typename Result, typename Entry, typename Register>
size_t add_registration(const family<Result, Entry>& f, const char* function,
                        typename non_deduced<Entry>::type entry, Register&& register_with_orthanc) {
    check_registration_open(function);
    bool created = false;
    callback_list_of<Entry>& list = state().families.list(f, created);
    const size_t index = list.add(function, std::move(entry));
    // After a fall-back to the main interpreter the C callback may already be
    // registered with Orthanc (by a sub-interpreter): the list outlives that.
    if (created) register_with_orthanc();
    return index;
}

/// Defines the registration function text.name(callback), which adds its one
/// callable to family `f`; the family's first registration also runs
/// `register_with_orthanc` (a lambda that registers the C callback).
template <typename Result, typename Register>
void def_registration(py::module_& m, const binding_text<1>& text, const family<Result>& f,
                      Register register_with_orthanc) {
    // text.name is a string literal of the generated code.
    text.def(m, [&f, name = text.name, register_with_orthanc](py::function callback) {
        add_registration(f, name, py::object(std::move(callback)), register_with_orthanc);
    });
}

/// The same for a family registered with Orthanc by one SDK call,
/// `sdk_register(context, trampoline)`. The generated module calls it for the
/// registrations that generator/manifest.toml describes with `registers`.
template <typename Family, typename Result, typename Trampoline>
void def_registration(py::module_& m, const binding_text<1>& text, const Family& f,
                      Result (*sdk_register)(OrthancPluginContext*, Trampoline),
                      Trampoline trampoline) {
    def_registration(m, text, f, [sdk_register, trampoline] {
        if constexpr (std::is_void_v<Result>) {
            sdk_register(context(), trampoline);
        } else {
            check_sdk(sdk_register(context(), trampoline));
        }
    });
}

}  // namespace opm
