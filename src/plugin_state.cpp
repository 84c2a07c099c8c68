#include "plugin_state.h"

#include <stdexcept>

namespace opm {

namespace {

/// The one pointer to the plugin's state; null before the first start.
std::atomic<plugin_state*> g_state{nullptr};

}  // namespace

plugin_state* current_state() {
    return g_state.load(std::memory_order_acquire);
}

plugin_state& state() {
    plugin_state* current = current_state();
    if (current == nullptr) throw std::logic_error("the Python plugin is not running");
    return *current;
}

plugin_state& start_state(plugin_config config) {
    auto created = std::make_unique<plugin_state>();
    created->config = std::move(config);
    plugin_state& started = *created;
    plugin_state* previous = g_state.exchange(created.release(), std::memory_order_acq_rel);
    // One whose runtime was left running is leaked on purpose: see plugin_state.
    if (previous != nullptr && previous->finalized) delete previous;
    return started;
}

void end_state(bool finalized) {
    plugin_state& ended = state();
    ended.ended = true;
    ended.finalized = finalized;
}

}  // namespace opm
