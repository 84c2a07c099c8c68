// The embedded CPython runtime and the interpreters that run the user's script.
#pragma once

#include <Python.h>
#include "no_copy.h"

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace opm {

/// PythonInterpreters accepts at most this many.
constexpr size_t max_interpreters = 1024;

struct pool_options {
    unsigned interpreters = 1;  ///< 1: the main interpreter; N >= 2: N isolated sub-interpreters
    /// With N >= 2: the main interpreter too, as interpreter N (PythonMainScript).
    bool main_alongside = false;
    bool verbose = false;    ///< PyConfig.verbose
    std::string home;        ///< PyConfig.home (the base Python installation)
    std::string executable;  ///< PyConfig.executable (the virtual environment's python)
};

/// Counters of one interpreter, updated lock-free by the callback threads.
struct interpreter_stats {
    std::atomic<int> in_flight{0};               ///< calls dispatched here and not finished
    std::atomic<unsigned long> calls{0};         ///< calls dispatched here since start
    std::atomic<unsigned long> errors{0};        ///< callbacks that raised
    std::atomic<unsigned long long> busy_ns{0};  ///< time spent in calls, waiting included
};

/// Thrown by the `prepare(index)` of a sub-interpreter when the script needs the
/// main interpreter (it imports a module that cannot load in a sub-interpreter);
/// the message is the warning to log.
class needs_main_interpreter : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Owns the CPython runtime of the process and the interpreters that run the script,
/// for one run of the plugin: a new pool for each start (Orthanc's /tools/reset
/// finalizes the plugin and initializes it again in the same process).
///
/// - initialize() and finalize() must run on the SAME OS thread (Orthanc calls
///   OrthancPluginInitialize and OrthancPluginFinalize on its main thread), once each.
/// - Between them, any thread may attach to an interpreter with attach_guard; the
///   pool creates one PyThreadState per (OS thread, interpreter) on first use, keeps
///   it for the thread's lifetime and deletes it when the thread exits.
/// - No thread holds any GIL when initialize() returns or when finalize() is called.
/// - Destroy it only when finalize() returned true (the runtime is finalized), or
///   before initialize(): otherwise a thread of the script may still read it.
class interpreter_pool : no_copy {
public:
    interpreter_pool();

    /// Initializes Python and creates the interpreters. With sub-interpreters,
    /// `prepare_main()` first runs in the main interpreter; then `prepare(index)`
    /// runs in each new interpreter, GIL held, before the next one is created.
    /// Either may throw: the exception propagates with no GIL held, and the caller
    /// then calls finalize() to shut down what was started.
    ///
    /// When `prepare(index)` of a sub-interpreter throws needs_main_interpreter,
    /// the pool logs its message, runs `discard(index)` in each sub-interpreter
    /// created so far (GIL held; false when its threads would not stop, which leaves
    /// it un-ended), ends them, and becomes a pool of the main interpreter alone
    /// (index 0), as with `interpreters = 1`, running `prepare(0)` there.
    ///
    /// With `main_alongside`, once the N sub-interpreters are prepared the main
    /// interpreter becomes interpreter N and `prepare(N)` runs there (not after a
    /// fall-back, where the main interpreter is interpreter 0).
    void initialize(const pool_options& options, const std::function<void()>& prepare_main,
                    const std::function<void(size_t)>& prepare,
                    const std::function<bool(size_t)>& discard);

    /// Whether the main interpreter is interpreter N alongside N sub-interpreters.
    bool main_alongside() const { return main_alongside_; }
    /// Whether `index` is that main interpreter alongside the sub-interpreters.
    bool is_main_alongside(size_t index) const { return main_alongside_ && index + 1 == size_; }
    /// The number of interpreters that run PythonScript (the main one alongside aside).
    size_t script_interpreters() const { return main_alongside_ ? size_ - 1 : size_; }

    /// Runs `fn(index)` in each live interpreter in turn, with its GIL held
    /// (on the calling thread, which must hold no GIL).
    void for_each(const std::function<void(size_t)>& fn);

    /// Shuts the runtime down, bounded by `deadline`:
    /// 1. refuses new callbacks and waits for those in flight (their lists must
    ///    not be cleared under them);
    /// 2. `before_end(index)` runs in each interpreter (GIL held) and returns false
    ///    when a thread of that interpreter would not stop;
    /// 3. refuses SDK calls from other threads and waits for those in progress:
    ///    a daemon thread that finalization meets inside one would be ended by
    ///    pthread_exit when it takes the GIL back, unwinding through C++ frames;
    /// 4. deletes cached thread states, ends the interpreters, finalizes.
    /// Whatever does not finish in time leaves the runtime running (logged)
    /// rather than hanging or aborting the process. Returns true when the runtime
    /// was finalized (or never started), false when it is left running. Throws
    /// std::logic_error, changing nothing, on another thread than initialize()'s.
    bool finalize(const std::function<bool(size_t)>& before_end,
                  std::chrono::steady_clock::time_point deadline);

    // seq_cst: pairs with the count in in_flight_scope (see there).
    bool running() const { return running_.load(std::memory_order_seq_cst); }
    /// The number of interpreters (all exist once initialize() returns), the main
    /// one alongside the sub-interpreters included.
    size_t size() const { return size_; }
    bool uses_main_interpreter() const { return uses_main_; }
    /// Whether interpreter `index` is the main interpreter.
    bool is_main(size_t index) const {
        return index < slots_.size() && slots_[index].owner == main_tstate_;
    }

    /// Index of the interpreter the calling thread is attached to (its GIL held).
    size_t current_index() const;

    interpreter_stats& stats(size_t index) { return stats_[index]; }
    const interpreter_stats& stats(size_t index) const { return stats_[index]; }

    /// Callbacks in flight, all interpreters together (see in_flight_scope).
    std::atomic<int>& active_calls() { return active_calls_; }

    /// Counts an SDK call about to run with the GIL released; false (nothing
    /// counted) once finalize() refuses them, except on the finalizing thread.
    bool enter_sdk_call();
    void leave_sdk_call() { sdk_calls_.fetch_sub(1, std::memory_order_seq_cst); }
    /// Refuses every SDK call from now on (end of OrthancPluginFinalize).
    void close_sdk_calls() {
        finalizing_thread_ = std::thread::id();
        sdk_open_.store(false, std::memory_order_seq_cst);
    }

    // Used by attach_guard.
    PyThreadState* thread_state_for(size_t index);

private:
    struct slot {
        PyInterpreterState* interp = nullptr;
        PyThreadState* owner = nullptr;  ///< created with the interpreter, on the init thread
        bool ended = false;
    };

    void reap_cached_thread_states();
    /// See initialize(): the sub-interpreters go, the main interpreter stays (attached).
    void fall_back_to_main(const std::function<bool(size_t)>& discard);
    /// Whether a thread state other than the owner's exists in that interpreter
    /// (its GIL held).
    static bool has_other_threads(const slot& s);
    /// Waits (no GIL held) until `counter` is zero or `deadline`; false on time-out.
    static bool wait_for_zero(const std::atomic<int>& counter,
                              std::chrono::steady_clock::time_point deadline);

    /// Creates the interpreters after the main one is initialized (GIL held).
    void create_interpreters(const pool_options& options, const std::function<void()>& prepare_main,
                             const std::function<void(size_t)>& prepare,
                             const std::function<bool(size_t)>& discard);
    /// Ends the sub-interpreters whose threads `stopped` (no GIL held); false when
    /// one of them stays (a thread still runs in it).
    bool end_sub_interpreters(const std::vector<bool>& stopped);
    /// The slot of the main interpreter (main_tstate_ set).
    slot main_slot() const;
    /// Adds the main interpreter as the next slot.
    void add_main_slot();
    /// Ends sub-interpreter `i` (its GIL held through its owner thread state, which
    /// is current); Py_EndInterpreter leaves no thread state attached.
    void end_interpreter(size_t i);

    std::vector<slot> slots_;
    size_t size_ = 0;
    PyThreadState* main_tstate_ = nullptr;
    bool uses_main_ = true;
    bool main_alongside_ = false;
    /// Thread states cached before this pool existed belong to interpreters of an
    /// earlier run (see thread_state_for).
    unsigned long generation_;
    /// A sub-interpreter was left un-ended at fall-back: never finalize the runtime.
    bool abandoned_ = false;
    std::atomic<bool> running_{false};
    std::array<interpreter_stats, max_interpreters + 1> stats_;  // + the main one alongside
    std::atomic<int> active_calls_{0};
    std::atomic<bool> sdk_open_{true};
    std::atomic<int> sdk_calls_{0};
    std::thread::id finalizing_thread_;
    std::thread::id owner_thread_;  ///< initialize()'s, where finalize() must run
};

/// Attaches the calling thread to one interpreter and takes its GIL for the
/// lifetime of the object, with the thread's cached thread state.
///
/// - Construction and destruction must happen on the SAME OS thread.
/// - May nest: a thread that holds another interpreter's GIL (or the same one's,
///   through a nested SDK call) has it detached for the duration and restored after.
class attach_guard : no_copy {
public:
    attach_guard(interpreter_pool& pool, size_t index);
    ~attach_guard();

private:
    PyThreadState* previous_;
};

/// Releases the GIL the calling thread holds for the lifetime of the object.
class release_gil : no_copy {
public:
    release_gil() : state_(PyEval_SaveThread()) {}
    // noexcept(false): on 3.13, a daemon thread that takes the GIL back after
    // finalization is ended by pthread_exit, whose forced unwind must not meet
    // a noexcept frame (std::terminate). finalize() makes this unlikely (see 3.).
    ~release_gil() noexcept(false) { PyEval_RestoreThread(state_); }

private:
    PyThreadState* state_;
};

/// Counts a call as in flight on an interpreter (for least-loaded dispatch).
///
/// Counted before the caller checks running(): finalize() sets running_ to
/// false, then waits for the pool-wide count, so a callback is either refused
/// or waited for (both sequentially consistent).
class in_flight_scope : no_copy {
public:
    in_flight_scope(interpreter_pool& pool, size_t index)
        : stats_(pool.stats(index)),
          active_(pool.active_calls()),
          started_(std::chrono::steady_clock::now()) {
        active_.fetch_add(1, std::memory_order_seq_cst);
        stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
        stats_.calls.fetch_add(1, std::memory_order_relaxed);
    }
    ~in_flight_scope() {
        const auto elapsed = std::chrono::steady_clock::now() - started_;
        stats_.busy_ns.fetch_add(
            std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
            std::memory_order_relaxed);
        stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
        active_.fetch_sub(1, std::memory_order_seq_cst);
    }

private:
    interpreter_stats& stats_;
    std::atomic<int>& active_;
    std::chrono::steady_clock::time_point started_;
};

}  // namespace opm
