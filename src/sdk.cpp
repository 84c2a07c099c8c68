#include "sdk.h"

#include <atomic>

namespace opm {

namespace {
/// Read by any thread; null after OrthancPluginFinalize.
std::atomic<OrthancPluginContext*> g_context{nullptr};
}  // namespace

OrthancPluginContext* context() {
    return g_context.load();
}
void set_context(OrthancPluginContext* context) {
    g_context.store(context);
}

void log_info(const std::string& message) {
    if (OrthancPluginContext* c = context()) OrthancPluginLogInfo(c, message.c_str());
}
void log_warning(const std::string& message) {
    if (OrthancPluginContext* c = context()) OrthancPluginLogWarning(c, message.c_str());
}
void log_error(const std::string& message) {
    if (OrthancPluginContext* c = context()) OrthancPluginLogError(c, message.c_str());
}

sdk_string::~sdk_string() {
    if (value_ != nullptr && context() != nullptr) OrthancPluginFreeString(context(), value_);
}

}  // namespace opm
