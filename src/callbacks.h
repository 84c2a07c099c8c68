// What every callback family shares: the registered callables, per interpreter,
// and running a call in a chosen interpreter.
#pragma once

#include "errors.h"
#include "interpreter_pool.h"
#include "no_copy.h"
#include "orthanc_handwritten.h"
#include "py_bytes.h"
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
void close_registration();

/// Forgets every registration of a previous run (Orthanc's /tools/reset
/// initializes the plugin again in the same process), REST routes included,
/// and opens registration.
void reset_registrations();

/// Which of PythonScript and PythonMainScript (the main interpreter alongside
/// the sub-interpreters) may register a family.
enum class family_scripts {
    /// One of the two only: dispatch picks one interpreter per call, and the
    /// callables of both scripts would each see only part of the calls (or
    /// Orthanc accepts the family once). The other script's add() raises.
    either,
    /// Both; the family calls one interpreter of each script (OnChange).
    both,
};

/// The registrations of one family (one registration function), per
/// interpreter, in registration order; several registrations are called in that
/// order. What each registration holds is callback_list_of's Entry.
///
/// - add() runs while the scripts load (Orthanc's main thread, one interpreter at
///   a time); afterwards the lists are only read, from any thread, without a lock.
/// - The entries of interpreter i are called and dropped only with its GIL.
/// - Every list is cleared by clear_all_callbacks() before its interpreter ends.
/// - The constructor adds the list to a process-wide registry that nothing
///   removes it from: only objects of static storage duration (one per family,
///   at namespace scope) may be callback lists.
class callback_registrations : no_copy {
public:
    bool empty() const { return interpreters_.empty(); }
    /// The interpreters that registered, in order of their first registration.
    const std::vector<size_t>& interpreters() const { return interpreters_; }
    /// The least loaded interpreter among those that registered; ties round-robin;
    /// no_interpreter when none did (a script that registered in a sub-interpreter
    /// but not in the main one it fell back to): call_in then fails the call.
    size_t pick();
    /// Drops the entries of interpreter `index` (its GIL held).
    virtual void clear(size_t index) = 0;
    /// Forgets that interpreter `index` registered (its entries already cleared;
    /// while the scripts load only). The C callback stays registered with Orthanc.
    void forget(size_t index);
    /// Forgets the registrations (their entries must already be cleared).
    virtual void reset();

protected:
    explicit callback_registrations(family_scripts allowed);
    ~callback_registrations() = default;

    /// Checks and records a registration of the current interpreter for the
    /// Python function `function` (raises once the scripts have loaded, or for the
    /// other script); `first` is true for the family's very first registration
    /// (register the C callback then). Returns the interpreter's index.
    size_t record(const char* function, bool& first);

private:
    family_scripts allowed_;
    std::vector<size_t> interpreters_;
    std::atomic<unsigned> next_{0};
    bool registered_ = false;  ///< the C callback is registered with Orthanc
};

/// A family's registrations holding an Entry each: a callable, or a struct of
/// the callables of one registration (py::object members).
template <typename Entry>
class callback_list_of final : public callback_registrations {
public:
    explicit callback_list_of(family_scripts allowed = family_scripts::either)
        : callback_registrations(allowed) {}

    /// Adds an entry of the current interpreter (see record()); returns true for
    /// the family's first registration: register the C callback then.
    bool add(const char* function, Entry entry) {
        bool first = false;
        const size_t index = record(function, first);
        const size_t size = interpreter_pool::instance().size();
        if (entries_.size() < size) entries_.resize(size);
        entries_[index].push_back(std::move(entry));
        return first;
    }
    const std::vector<Entry>& of(size_t index) const { return entries_[index]; }
    /// Whether interpreter `index` registered at least one entry.
    bool registered_in(size_t index) const {
        return index < entries_.size() && !entries_[index].empty();
    }
    void clear(size_t index) override {
        if (index < entries_.size()) entries_[index].clear();
    }
    void reset() override {
        entries_.clear();
        callback_registrations::reset();
    }

private:
    std::vector<std::vector<Entry>> entries_;
};

/// The usual family: one callable per registration.
using callback_list = callback_list_of<py::object>;

/// Raises unless interpreters `a` and `b` run the same script (both PythonScript,
/// or the same main interpreter): for families only one script may register.
void check_same_script(const char* function, size_t a, size_t b);

/// Drops the callables of interpreter `index` in every family, REST routes
/// included (its GIL held).
void clear_all_callbacks(size_t index);

/// Copies a bytes-like object (or a str, as UTF-8) into a buffer that Orthanc
/// allocates and frees; raises when it cannot allocate, naming `what`. GIL held.
void fill_buffer(OrthancPluginMemoryBuffer* target, py::handle data, const char* what);
void fill_buffer(OrthancPluginMemoryBuffer64* target, py::handle data, const char* what);

/// callback_list::forget in every family, then forget_rest (while the scripts
/// load, after clear_all_callbacks of that interpreter).
void forget_all_callbacks(size_t index);

/// What callback_list::pick returns when no interpreter registered.
constexpr size_t no_interpreter = static_cast<size_t>(-1);

/// Least calls in flight among `candidates`, ties round-robin through `next`;
/// throws std::logic_error when `candidates` is empty.
size_t least_loaded(const std::vector<size_t>& candidates, std::atomic<unsigned>& next);

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
    interpreter_pool& pool = interpreter_pool::instance();
    try {
        if (index >= pool.size()) throw std::logic_error("no interpreter registered it");
        // Counted first, then checked: finalize() waits for what it did not refuse.
        in_flight_scope busy(pool, index);
        if (!pool.running()) return on_error;
        attach_guard attached(index);
        try {
            return body();
        } catch (const py::error_already_set& error) {
            const OrthancPluginErrorCode code =
                report_callback_error(describe(what).c_str(), error);
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

/// Defines the registration function text.name(arg), which adds its one
/// callable to `list`; the family's first registration also runs
/// `register_with_orthanc` (a lambda that registers the C callback).
template <typename Register>
void def_registration(py::module_& m, const binding_text& text, callback_list& list,
                      const char* arg, Register register_with_orthanc) {
    const char* name = text.name;  // a string literal of the generated code
    m.def(
        name,
        [&list, name, register_with_orthanc](py::function callback) {
            if (list.add(name, std::move(callback))) register_with_orthanc();
        },
        py::arg(arg), text.doc);
}

/// The same for a family registered with Orthanc by one SDK call,
/// `sdk_register(context, trampoline)`. The generated module calls it for the
/// registrations that generator/manifest.toml describes with `registers`.
template <typename Result, typename Trampoline>
void def_registration(py::module_& m, const binding_text& text, callback_list& list,
                      const char* arg, Result (*sdk_register)(OrthancPluginContext*, Trampoline),
                      Trampoline trampoline) {
    def_registration(m, text, list, arg, [sdk_register, trampoline] {
        if constexpr (std::is_void_v<Result>) {
            sdk_register(context(), trampoline);
        } else {
            check_sdk(sdk_register(context(), trampoline));
        }
    });
}

}  // namespace opm
