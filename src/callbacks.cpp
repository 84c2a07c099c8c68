#include "callbacks.h"

#include <algorithm>
#include <cstring>

namespace opm {

void check_registration_open(const char* function) {
    if (!state().registration_open.load())
        raise_orthanc_exception(
            OrthancPluginErrorCode_BadSequenceOfCalls,
            (std::string(function) + " can only be called while the script loads").c_str());
}

void check_same_script(const char* function, size_t a, size_t b) {
    const interpreter_pool& pool = state().pool;
    if (pool.is_main_alongside(a) == pool.is_main_alongside(b)) return;
    raise_orthanc_exception(
        OrthancPluginErrorCode_BadSequenceOfCalls,
        (std::string(function) + ": PythonScript and PythonMainScript cannot both register this "
                                 "(each call would reach only one of them); keep it in one script")
            .c_str());
}

size_t callback_registrations::record(const char* function) {
    check_registration_open(function);
    const size_t index = state().pool.current_index();
    if (allowed_ == family_scripts::either && !interpreters_.empty())
        check_same_script(function, interpreters_.front(), index);
    if (std::find(interpreters_.begin(), interpreters_.end(), index) == interpreters_.end())
        interpreters_.push_back(index);
    return index;
}

size_t callback_registrations::interpreter_count() {
    return state().pool.size();
}

size_t callback_registrations::pick(dispatch_policy policy) {
    const size_t count = interpreters_.size();
    if (count == 0) return no_interpreter;
    if (count == 1 || policy == dispatch_policy::first_registered) return interpreters_.front();
    // Least loaded: the fewest calls in flight, from a round-robin start so that
    // equally loaded interpreters take turns.
    interpreter_pool& pool = state().pool;
    const size_t start = next_.fetch_add(1, std::memory_order_relaxed) % count;
    size_t best = interpreters_[start];
    int best_load = pool.stats(best).in_flight.load(std::memory_order_relaxed);
    for (size_t k = 1; k < count && best_load > 0; ++k) {
        const size_t candidate = interpreters_[(start + k) % count];
        const int load = pool.stats(candidate).in_flight.load(std::memory_order_relaxed);
        if (load < best_load) {
            best = candidate;
            best_load = load;
        }
    }
    return best;
}

void callback_registrations::forget(size_t index) {
    interpreters_.erase(std::remove(interpreters_.begin(), interpreters_.end(), index),
                        interpreters_.end());
}

void family_registry::clear(size_t index) {
    for (auto& [key, list] : families_) list->clear(index);
    for (auto& route : routes_) route->clear(index);
}

void family_registry::forget(size_t index) {
    for (auto& [key, list] : families_) list->forget(index);
    for (auto& route : routes_) route->forget(index);
}

OrthancPluginErrorCode report_error_in(size_t index, const char* what,
                                       const py::error_already_set& error) {
    state().pool.stats(index).errors.fetch_add(1, std::memory_order_relaxed);
    return report_callback_error(what, error);
}

sdk_call::sdk_call() : pool_(state().pool) {
    if (!pool_.enter_sdk_call())
        raise_orthanc_exception(OrthancPluginErrorCode_BadSequenceOfCalls,
                                "Orthanc is stopping: the plugin no longer calls it");
    state_ = PyEval_SaveThread();
}

sdk_call::~sdk_call() noexcept(false) {
    PyEval_RestoreThread(state_);
    pool_.leave_sdk_call();
}

namespace {

OrthancPluginErrorCode allocate(OrthancPluginMemoryBuffer* target, const byte_view& bytes) {
    return OrthancPluginCreateMemoryBuffer(context(), target, bytes.size32());
}

OrthancPluginErrorCode allocate(OrthancPluginMemoryBuffer64* target, const byte_view& bytes) {
    return OrthancPluginCreateMemoryBuffer64(context(), target, bytes.size());
}

template <typename Buffer>
void fill(Buffer* target, py::handle data, const char* what) {
    byte_view bytes(data);
    if (allocate(target, bytes) != OrthancPluginErrorCode_Success)
        throw std::runtime_error(std::string("cannot allocate ") + what);
    if (bytes.size() > 0) std::memcpy(target->data, bytes.data(), bytes.size());
}

}  // namespace

void fill_buffer(OrthancPluginMemoryBuffer* target, py::handle data, const char* what) {
    fill(target, data, what);
}

void fill_buffer(OrthancPluginMemoryBuffer64* target, py::handle data, const char* what) {
    fill(target, data, what);
}

}  // namespace opm
