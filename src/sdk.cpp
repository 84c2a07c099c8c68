#include "sdk.h"

namespace opm {

namespace {
OrthancPluginContext* g_context = nullptr;
}  // namespace

OrthancPluginContext* context() { return g_context; }
void set_context(OrthancPluginContext* context) { g_context = context; }

void log_info(const std::string& message) {
    if (g_context) OrthancPluginLogInfo(g_context, message.c_str());
}
void log_warning(const std::string& message) {
    if (g_context) OrthancPluginLogWarning(g_context, message.c_str());
}
void log_error(const std::string& message) {
    if (g_context) OrthancPluginLogError(g_context, message.c_str());
}

sdk_string::~sdk_string() {
    if (value_ != nullptr) OrthancPluginFreeString(g_context, value_);
}

}  // namespace opm
