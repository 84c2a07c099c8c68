// The registrations of every callback family, REST routes included: which
// interpreters registered what, and which of them a call goes to.
#pragma once

#include "no_copy.h"

#include <orthanc/OrthancCPlugin.h>

#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace opm {

namespace py = pybind11;

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

/// How a family picks the interpreter of a call among those that registered it.
/// Calls that continue an object created by an earlier call (a C-MOVE driver, a
/// job, a chunked request reader) are pinned to its interpreter instead.
enum class dispatch_policy {
    /// The fewest calls in flight; ties round-robin.
    least_loaded,
    /// The first that registered: one scheduler, as with the existing plugin.
    first_registered,
};

/// What a callback family declares: how its errors are named, what its
/// trampoline returns when the call fails, and where calls go. Families are
/// constants at namespace scope in their family file; what they registered lives
/// in the plugin state's family_registry, keyed by the family's address.
template <typename Result, typename Entry = py::object>
struct family {
    const char* what;  ///< "the OnStoredInstance callback", for the log
    Result on_error;
    dispatch_policy policy = dispatch_policy::least_loaded;
    family_scripts scripts = family_scripts::either;
};

/// The family of a registration whose SDK function is `Registration`
/// (OrthancPluginRegister...(context, trampoline)): its Result is the trampoline's.
template <typename Registration>
struct family_for_t;
template <typename Status, typename Result, typename... Args>
struct family_for_t<Status (*)(OrthancPluginContext*, Result (*)(Args...))> {
    using type = family<Result>;
};
template <typename Registration>
using family_for = typename family_for_t<Registration>::type;

/// What pick() returns when no interpreter registered.
constexpr size_t no_interpreter = static_cast<size_t>(-1);

/// The registrations of one family (or one REST route), per interpreter, in
/// registration order; several registrations are called in that order.
///
/// - add() runs while the scripts load (Orthanc's main thread, one interpreter at
///   a time); afterwards the lists are only read, from any thread, without a lock.
/// - The entries of interpreter i are called and dropped only with its GIL.
/// - family_registry::clear() drops them before their interpreter ends.
class callback_registrations : no_copy {
public:
    explicit callback_registrations(family_scripts allowed) : allowed_(allowed) {}
    virtual ~callback_registrations() = default;

    /// The interpreters that registered, in order of their first registration.
    const std::vector<size_t>& interpreters() const { return interpreters_; }
    /// The interpreter for a call; no_interpreter when none registered (a script
    /// that registered in a sub-interpreter but not in the main one it fell back
    /// to): call_in then fails the call.
    size_t pick(dispatch_policy policy);
    /// Drops the entries of interpreter `index` (its GIL held).
    virtual void clear(size_t index) = 0;
    /// Forgets that interpreter `index` registered (its entries already cleared;
    /// while the scripts load only). The C callback stays registered with Orthanc.
    void forget(size_t index);

protected:
    /// Checks and records a registration of the current interpreter for the
    /// Python function `function` (raises once the scripts have loaded, or for the
    /// other script); returns the interpreter's index.
    size_t record(const char* function);
    /// The number of interpreters of the running plugin.
    static size_t interpreter_count();

private:
    family_scripts allowed_;
    std::vector<size_t> interpreters_;
    std::atomic<unsigned> next_{0};
};

/// A family's registrations holding an Entry each: a callable, or a struct of
/// the callables of one registration (py::object members).
template <typename Entry>
class callback_list_of : public callback_registrations {
public:
    using callback_registrations::callback_registrations;

    /// Adds an entry of the current interpreter (see record()); returns its index.
    size_t add(const char* function, Entry entry) {
        const size_t index = record(function);
        if (entries_.size() < interpreter_count()) entries_.resize(interpreter_count());
        entries_[index].push_back(std::move(entry));
        return index;
    }
    const std::vector<Entry>& of(size_t index) const { return entries_[index]; }
    /// Whether interpreter `index` registered at least one entry.
    bool registered_in(size_t index) const {
        return index < entries_.size() && !entries_[index].empty();
    }
    void clear(size_t index) override {
        if (index < entries_.size()) entries_[index].clear();
    }

private:
    std::vector<std::vector<Entry>> entries_;
};

/// The usual family: one callable per registration.
using callback_list = callback_list_of<py::object>;

/// Every registration of one run of the plugin.
///
/// - Families and routes are added while the scripts load (Orthanc's main thread);
///   afterwards they are only looked up, from any thread, without a lock (dispatch
///   looks nothing up before the pool runs).
/// - clear(i) must run for every interpreter i (its GIL held) before the registry
///   is destroyed: the entries are Python objects.
class family_registry : no_copy {
public:
    /// The registrations of `f`, created by its first registration. The first
    /// registration of a family with Orthanc: when `created` becomes true.
    template <typename Result, typename Entry>
    callback_list_of<Entry>& list(const family<Result, Entry>& f, bool& created) {
        std::unique_ptr<callback_registrations>& slot = families_[&f];
        created = slot == nullptr;
        if (created) slot = std::make_unique<callback_list_of<Entry>>(f.scripts);
        return static_cast<callback_list_of<Entry>&>(*slot);
    }
    /// The registrations of `f`; nullptr when nothing registered it.
    template <typename Result, typename Entry>
    callback_list_of<Entry>* find(const family<Result, Entry>& f) const {
        auto found = families_.find(&f);
        return found == families_.end()
                   ? nullptr
                   : static_cast<callback_list_of<Entry>*>(found->second.get());
    }

    /// Routes are numbered: Orthanc calls each through its own trampoline.
    size_t add_route(std::unique_ptr<callback_registrations> route) {
        routes_.push_back(std::move(route));
        return routes_.size() - 1;
    }
    size_t route_count() const { return routes_.size(); }
    callback_registrations& route(size_t id) const { return *routes_[id]; }

    /// Drops every entry of interpreter `index` (its GIL held).
    void clear(size_t index);
    /// Forgets that interpreter `index` registered anything (after clear(index)).
    void forget(size_t index);

private:
    std::unordered_map<const void*, std::unique_ptr<callback_registrations>> families_;
    std::vector<std::unique_ptr<callback_registrations>> routes_;
};

}  // namespace opm
