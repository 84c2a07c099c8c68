#include "callbacks.h"

#include "rest.h"

#include <algorithm>
#include <cstring>

namespace opm {

namespace {

std::atomic<bool> g_registration_open{true};

std::vector<callback_registrations*>& all_lists() {
    static std::vector<callback_registrations*> lists;
    return lists;
}

}  // namespace

void check_registration_open(const char* function) {
    if (!g_registration_open.load())
        raise_orthanc_exception(
            OrthancPluginErrorCode_BadSequenceOfCalls,
            (std::string(function) + " can only be called while the script loads").c_str());
}

void close_registration() {
    g_registration_open.store(false);
}

void reset_registrations() {
    for (callback_registrations* list : all_lists()) list->reset();
    reset_rest();
    g_registration_open.store(true);
}

void check_same_script(const char* function, size_t a, size_t b) {
    interpreter_pool& pool = interpreter_pool::instance();
    if (pool.is_main_alongside(a) == pool.is_main_alongside(b)) return;
    raise_orthanc_exception(
        OrthancPluginErrorCode_BadSequenceOfCalls,
        (std::string(function) + ": PythonScript and PythonMainScript cannot both register this "
                                 "(each call would reach only one of them); keep it in one script")
            .c_str());
}

callback_registrations::callback_registrations(family_scripts allowed) : allowed_(allowed) {
    all_lists().push_back(this);
}

size_t callback_registrations::record(const char* function, bool& first) {
    check_registration_open(function);
    const size_t index = interpreter_pool::instance().current_index();
    if (allowed_ == family_scripts::either && !interpreters_.empty())
        check_same_script(function, interpreters_.front(), index);
    // After a fall-back to the main interpreter the C callback may already be
    // registered with Orthanc (by a sub-interpreter): never twice.
    first = !registered_;
    registered_ = true;
    if (std::find(interpreters_.begin(), interpreters_.end(), index) == interpreters_.end())
        interpreters_.push_back(index);
    return index;
}

size_t callback_registrations::pick() {
    return interpreters_.empty() ? no_interpreter : least_loaded(interpreters_, next_);
}

void callback_registrations::forget(size_t index) {
    interpreters_.erase(std::remove(interpreters_.begin(), interpreters_.end(), index),
                        interpreters_.end());
}

void callback_registrations::reset() {
    interpreters_.clear();
    registered_ = false;
}

void clear_all_callbacks(size_t index) {
    for (callback_registrations* list : all_lists()) list->clear(index);
    finalize_rest(index);
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

void forget_all_callbacks(size_t index) {
    for (callback_registrations* list : all_lists()) list->forget(index);
    forget_rest(index);
}

size_t least_loaded(const std::vector<size_t>& candidates, std::atomic<unsigned>& next) {
    interpreter_pool& pool = interpreter_pool::instance();
    const size_t count = candidates.size();
    if (count == 0) throw std::logic_error("no interpreter registered this callback");
    if (count == 1) return candidates[0];
    const size_t start = next.fetch_add(1, std::memory_order_relaxed) % count;
    size_t best = candidates[start];
    int best_load = pool.stats(best).in_flight.load(std::memory_order_relaxed);
    for (size_t k = 1; k < count && best_load > 0; ++k) {
        const size_t candidate = candidates[(start + k) % count];
        const int load = pool.stats(candidate).in_flight.load(std::memory_order_relaxed);
        if (load < best_load) {
            best = candidate;
            best_load = load;
        }
    }
    return best;
}

}  // namespace opm
