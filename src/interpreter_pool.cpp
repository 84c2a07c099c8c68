#include "interpreter_pool.h"

#include "environment.h"
#include "sdk.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace opm {

namespace {

/// Deletes a thread state that no thread has attached.
/// gh-126914 aside, a thread state must be current to be cleared and deleted.
void delete_thread_state(PyThreadState* state) {
    PyEval_RestoreThread(state);
    PyThreadState_Clear(state);
    PyThreadState_DeleteCurrent();
}

/// The thread states that attach_guard created and that no one has deleted yet, for
/// every pool of the process. Process-wide because a thread may exit (and delete its
/// cached states) at any time, after the pool that created them is gone.
///
/// - `mutex` is never taken while holding a GIL.
/// - `generation` grows with each pool: Orthanc's /tools/reset finalizes and
///   initializes the plugin again in the same process, and a thread's cached
///   states from before belong to interpreters that no longer exist.
struct thread_state_registry {
    std::mutex mutex;
    std::unordered_set<PyThreadState*> states;
    std::atomic<unsigned long> generation{0};
};

thread_state_registry g_thread_states;

/// The thread states of one OS thread, by interpreter index.
struct thread_cache {
    std::vector<PyThreadState*> states;
    unsigned long generation = 0;

    // Runs at thread exit. Orthanc joins its threads before OrthancPluginFinalize,
    // so this normally deletes the states while their interpreters live; what
    // finalize() reaped first is no longer in the registry and is left alone.
    ~thread_cache() {
        std::lock_guard<std::mutex> lock(g_thread_states.mutex);
        for (PyThreadState* state : states) {
            if (state != nullptr && g_thread_states.states.erase(state) == 1)
                delete_thread_state(state);
        }
    }
};

thread_local thread_cache t_cache;

PyThreadState* current_thread_state() {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

void check(PyStatus status, const char* what) {
    if (PyStatus_Exception(status)) {
        throw std::runtime_error(std::string(what) + ": " +
                                 (status.err_msg ? status.err_msg : "unknown error"));
    }
}

/// Moves every object the GC tracks out of its reach (gc.freeze()) before an
/// interpreter ends or the runtime finalizes; that interpreter's GIL is held.
///
/// CPython 3.14 (measured on Debian's 3.14.8): once a traceback with source lines
/// has been formatted on an Orthanc HTTP thread (100 KiB stacks), the collection
/// that Py_EndInterpreter or Py_FinalizeEx runs after clearing the modules crashes
/// (SIGSEGV, with 1 and 2 interpreters) in handle_weakrefs on
/// an untracked weakref of the abc registry (collections.deque's). A full
/// gc.collect() at that moment succeeds, and neither plain Python nor a minimal
/// embedding reproduces it. Frozen objects are still freed by reference counting;
/// only cyclic garbage left at exit is not collected, which the process exit frees.
void freeze_before_finalize() {
#if PY_VERSION_HEX >= 0x030E0000
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* frozen = gc ? PyObject_CallMethod(gc, "freeze", nullptr) : nullptr;
    if (frozen == nullptr) {
        PyErr_Clear();
        log_warning("Python: gc.freeze() failed before finalizing the runtime");
    }
    Py_XDECREF(frozen);
    Py_XDECREF(gc);
#endif
}

/// Detaches the calling thread from the interpreter it is attached to when the
/// scope ends, by return or by exception.
class detach_at_exit : no_copy {
public:
    detach_at_exit() = default;
    ~detach_at_exit() { PyEval_SaveThread(); }
};

/// Logs why the Python runtime stays as it is at stop, and keeps this plugin (and
/// so libpython) mapped: Orthanc unloads its plugins after Finalize, and a thread
/// of the script still running would then execute unmapped code.
void leave_runtime_running(const std::string& why) {
    log_error(why);
    keep_plugin_loaded();
}

}  // namespace

interpreter_pool::interpreter_pool() : generation_(g_thread_states.generation.fetch_add(1) + 1) {}

void interpreter_pool::initialize(const pool_options& options,
                                  const std::function<void()>& prepare_main,
                                  const std::function<void(size_t)>& prepare,
                                  const std::function<bool(size_t)>& discard) {
    if (main_tstate_ != nullptr) throw std::logic_error("the interpreter pool is started once");
    owner_thread_ = std::this_thread::get_id();
    size_ = options.interpreters < 1 ? 1 : options.interpreters;
    if (size_ > max_interpreters) throw std::invalid_argument("too many interpreters");
    // Counted from the start: registries size themselves on size() as the scripts load.
    main_alongside_ = options.main_alongside && size_ >= 2;
    if (main_alongside_) ++size_;
    // Threads started by the script of interpreter 0 read slots_ (current_index)
    // while the next interpreters are added: it must never reallocate.
    slots_.reserve(size_);
    PyConfig config;
    // Isolated: Orthanc's environment (PYTHONPATH, PYTHONHOME...) is not meant for us,
    // and Python must not take over Orthanc's signal handlers.
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.verbose = options.verbose ? 1 : 0;
    try {
        if (!options.home.empty())
            check(PyConfig_SetBytesString(&config, &config.home, options.home.c_str()),
                  "PyConfig.home");
        if (!options.executable.empty()) {
            check(PyConfig_SetBytesString(&config, &config.executable, options.executable.c_str()),
                  "PyConfig.executable");
            check(
                PyConfig_SetBytesString(&config, &config.program_name, options.executable.c_str()),
                "PyConfig.program_name");
        }
        check(Py_InitializeFromConfig(&config), "cannot initialize Python");
    } catch (...) {
        PyConfig_Clear(&config);
        throw;
    }
    PyConfig_Clear(&config);
    main_tstate_ = PyThreadState_Get();
    {
        detach_at_exit detach;
        create_interpreters(options, prepare_main, prepare, discard);
    }
    running_.store(true, std::memory_order_release);
}

interpreter_pool::slot interpreter_pool::main_slot() const {
    return slot{PyThreadState_GetInterpreter(main_tstate_), main_tstate_};
}

void interpreter_pool::add_main_slot() {
    slots_.push_back(main_slot());
}

void interpreter_pool::create_interpreters(const pool_options& options,
                                           const std::function<void()>& prepare_main,
                                           const std::function<void(size_t)>& prepare,
                                           const std::function<bool(size_t)>& discard) {
    if (options.interpreters <= 1) {
        uses_main_ = true;
        add_main_slot();
        prepare(0);
        return;
    }
    uses_main_ = false;
    prepare_main();
    PyInterpreterConfig sub_config = {};
    sub_config.use_main_obmalloc = 0;
    sub_config.allow_fork = 0;
    sub_config.allow_exec = 0;
    sub_config.allow_threads = 1;
    // Everyday libraries start daemon threads (pynetdicom's non-blocking SCP, MQTT
    // and Kafka clients); one still running at stop leaves its interpreter
    // un-ended, like a stuck thread (finalize()).
    sub_config.allow_daemon_threads = 1;
    sub_config.check_multi_interp_extensions = 1;
    sub_config.gil = PyInterpreterConfig_OWN_GIL;
    for (unsigned i = 0; i < options.interpreters; ++i) {
        PyThreadState* owner = nullptr;
        // Detaches main_tstate_ and attaches the new interpreter's thread state.
        check(Py_NewInterpreterFromConfig(&owner, &sub_config), "cannot create a sub-interpreter");
        slots_.emplace_back();
        slots_.back().interp = PyThreadState_GetInterpreter(owner);
        slots_.back().owner = owner;
        try {
            prepare(i);
        } catch (const needs_main_interpreter& reason) {
            log_warning(reason.what());
            fall_back_to_main(discard);
            prepare(0);
            return;
        }
        PyThreadState_Swap(main_tstate_);
    }
    if (main_alongside_) {
        add_main_slot();
        prepare(slots_.size() - 1);
    }
}

void interpreter_pool::end_interpreter(size_t i) {
    freeze_before_finalize();
    Py_EndInterpreter(slots_[i].owner);
    slots_[i].ended = true;
}

void interpreter_pool::fall_back_to_main(const std::function<bool(size_t)>& discard) {
    // Attached to the last sub-interpreter; each one in turn is attached, emptied
    // and ended (which leaves no thread state attached), or left as it is.
    for (size_t i = 0; i < slots_.size(); ++i) {
        PyThreadState_Swap(slots_[i].owner);
        if (discard(i) && !has_other_threads(slots_[i])) {
            end_interpreter(i);
        } else {
            log_warning("Python: threads of sub-interpreter " + std::to_string(i) +
                        " still run; it is left as it is");
            abandoned_ = true;
        }
    }
    PyThreadState_Swap(main_tstate_);
    // A thread of a sub-interpreter left running may read slots_ (current_index):
    // the vector keeps its storage, and the pool is now the main interpreter alone.
    slots_.resize(1);
    main_alongside_ = false;
    slots_[0] = main_slot();
    size_ = 1;
    uses_main_ = true;
    // The counters of interpreter 0 were the first sub-interpreter's.
    stats_[0].calls = 0;
    stats_[0].errors = 0;
    stats_[0].busy_ns = 0;
}

void interpreter_pool::for_each(const std::function<void(size_t)>& fn) {
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].ended) continue;
        PyEval_RestoreThread(slots_[i].owner);
        detach_at_exit detach;
        fn(i);
    }
}

bool interpreter_pool::wait_for_zero(const std::atomic<int>& counter,
                                     std::chrono::steady_clock::time_point deadline) {
    while (counter.load(std::memory_order_seq_cst) != 0) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

bool interpreter_pool::finalize(const std::function<bool(size_t)>& before_end,
                                std::chrono::steady_clock::time_point deadline) {
    if (main_tstate_ != nullptr && std::this_thread::get_id() != owner_thread_)
        throw std::logic_error(
            "the interpreter pool must stop on the thread that started it (its interpreters' "
            "first thread states belong to that thread)");
    running_.store(false, std::memory_order_seq_cst);
    if (main_tstate_ == nullptr) return true;  // Python never started

    // 1. Callbacks still running would see their callables cleared under them.
    if (!wait_for_zero(active_calls_, deadline)) {
        leave_runtime_running(
            "Python: " + std::to_string(active_calls_.load()) +
            " callbacks still run at stop; the Python runtime is left running so that "
            "Orthanc can exit");
        return false;
    }

    // 2.
    std::vector<bool> stopped(slots_.size(), true);
    for_each([&](size_t i) { stopped[i] = before_end(i); });

    // 3. Only this thread may still call the SDK (finalization runs Python code).
    finalizing_thread_ = std::this_thread::get_id();
    sdk_open_.store(false, std::memory_order_seq_cst);
    const auto at_least = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    if (!wait_for_zero(sdk_calls_, std::max(deadline, at_least))) {
        leave_runtime_running(
            "Python: threads of the script are still inside calls to Orthanc at stop; "
            "the Python runtime is left running so that Orthanc can exit");
        return false;
    }

    // 4.
    reap_cached_thread_states();
    const bool all_ended = end_sub_interpreters(stopped);
    if (!all_ended || abandoned_) {
        // Py_FinalizeEx would wait for the thread forever (and end the leftover
        // sub-interpreters itself, which waits too). Leave the runtime as it is.
        leave_runtime_running(
            "Python: some threads of the script did not stop; "
            "the Python runtime is left running so that Orthanc can exit");
        return false;
    }
    PyEval_RestoreThread(main_tstate_);
    freeze_before_finalize();
    if (Py_FinalizeEx() != 0) log_warning("Python: errors while finalizing the runtime");
    main_tstate_ = nullptr;
    slots_.clear();
    size_ = 0;
    return true;
}

bool interpreter_pool::end_sub_interpreters(const std::vector<bool>& stopped) {
    bool all_ended = true;
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (!stopped[i]) {
            all_ended = false;
            continue;
        }
        if (slots_[i].owner == main_tstate_ || slots_[i].ended) continue;
        PyEval_RestoreThread(slots_[i].owner);
        if (has_other_threads(slots_[i])) {
            // Py_EndInterpreter would abort ("not the last thread"): a thread the
            // script started outside `threading` (_thread) still runs.
            PyEval_SaveThread();
            log_warning("Python: a thread of interpreter " + std::to_string(i) +
                        " still runs at stop; that interpreter is left running so that "
                        "Orthanc can exit");
            all_ended = false;
            continue;
        }
        end_interpreter(i);
    }
    return all_ended;
}

bool interpreter_pool::enter_sdk_call() {
    sdk_calls_.fetch_add(1, std::memory_order_seq_cst);
    if (sdk_open_.load(std::memory_order_seq_cst) ||
        std::this_thread::get_id() == finalizing_thread_)
        return true;
    sdk_calls_.fetch_sub(1, std::memory_order_seq_cst);
    return false;
}

bool interpreter_pool::has_other_threads(const slot& s) {
    // That interpreter's GIL is held: a thread of it deletes its thread state
    // only with that GIL, so the list cannot change under us.
    for (PyThreadState* state = PyInterpreterState_ThreadHead(s.interp); state != nullptr;
         state = PyThreadState_Next(state)) {
        if (state != s.owner) return true;
    }
    return false;
}

void interpreter_pool::reap_cached_thread_states() {
    std::unordered_set<PyThreadState*> leftovers;
    {
        std::lock_guard<std::mutex> lock(g_thread_states.mutex);
        leftovers.swap(g_thread_states.states);
    }
    if (leftovers.empty()) return;
    // Deleting them from this thread aborts ("_PyThreadState_Attach: non-NULL old
    // thread state"): this thread owns the interpreters' first thread states.
    std::thread reaper([&leftovers] {
        for (PyThreadState* state : leftovers) delete_thread_state(state);
    });
    reaper.join();
}

size_t interpreter_pool::current_index() const {
    PyInterpreterState* interp = PyInterpreterState_Get();
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].interp == interp) return i;
    }
    throw std::logic_error("the current interpreter does not belong to the plugin");
}

PyThreadState* interpreter_pool::thread_state_for(size_t index) {
    std::vector<PyThreadState*>& states = t_cache.states;
    if (t_cache.generation != generation_) {
        // Those were reaped by an earlier pool's finalize() (they left the registry).
        states.clear();
        t_cache.generation = generation_;
    }
    if (states.size() < size_) states.resize(size_, nullptr);
    PyThreadState*& state = states[index];
    if (state == nullptr) {
        state = PyThreadState_New(slots_[index].interp);
        std::lock_guard<std::mutex> lock(g_thread_states.mutex);
        g_thread_states.states.insert(state);
    }
    return state;
}

attach_guard::attach_guard(interpreter_pool& pool, size_t index)
    : previous_(current_thread_state()) {
    if (previous_ != nullptr) PyEval_SaveThread();
    PyEval_RestoreThread(pool.thread_state_for(index));
}

attach_guard::~attach_guard() {
    PyEval_SaveThread();
    if (previous_ != nullptr) PyEval_RestoreThread(previous_);
}

}  // namespace opm
