#include "metrics.h"

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <sstream>
#include <string>

namespace opm {

namespace {

/// Python callbacks of RegisterRefreshMetricsCallback: one scheduler, as with the
/// existing plugin.
const family<bool> g_python_refresh{"the metrics refresh callback", false,
                                    dispatch_policy::first_registered};

void publish(const std::string& name, double value) {
    OrthancPluginSetMetricsValue(context(), name.c_str(), static_cast<float>(value),
                                 OrthancPluginMetricsType_Default);
}

/// Called by Orthanc when /tools/metrics-prometheus is read: the interpreters'
/// counters (orthanc_python_*), then the script's own refresh callbacks.
void on_refresh_metrics() {
    plugin_state* current = current_state();
    if (current == nullptr || !current->pool.running()) return;
    interpreter_pool& pool = current->pool;
    publish("orthanc_python_interpreters", static_cast<double>(pool.size()));
    // Which index is the main interpreter (-1: none), e.g. alongside sub-interpreters.
    double main_index = -1;
    for (size_t i = 0; i < pool.size(); ++i) {
        if (pool.is_main(i)) main_index = static_cast<double>(i);
    }
    publish("orthanc_python_main_interpreter_index", main_index);
    for (size_t i = 0; i < pool.size(); ++i) {
        const interpreter_stats& stats = pool.stats(i);
        const std::string prefix = "orthanc_python_interpreter_" + std::to_string(i) + "_";
        publish(prefix + "calls", static_cast<double>(stats.calls.load()));
        publish(prefix + "in_flight", stats.in_flight.load());
        publish(prefix + "errors", static_cast<double>(stats.errors.load()));
        publish(prefix + "busy_seconds", static_cast<double>(stats.busy_ns.load()) / 1e9);
    }
    if (current->families.find(g_python_refresh) == nullptr) return;
    dispatch(g_python_refresh, [](const callables& callbacks, size_t) {
        for (const py::object& callback : callbacks) callback();
        return true;
    });
}

/// GET /python/interpreters: the same figures as JSON, computed without Python.
OrthancPluginErrorCode interpreters_route(OrthancPluginRestOutput* output, const char*,
                                          const OrthancPluginHttpRequest* request) {
    if (request->method != OrthancPluginHttpMethod_Get) {
        OrthancPluginSendMethodNotAllowed(context(), output, "GET");
        return OrthancPluginErrorCode_Success;
    }
    const interpreter_pool& pool = state().pool;
    std::ostringstream json;
    json << "{\"Interpreters\": [";
    for (size_t i = 0; pool.running() && i < pool.size(); ++i) {
        const interpreter_stats& stats = pool.stats(i);
        json << (i ? ", " : "") << "{\"Index\": " << i
             << ", \"Main\": " << (pool.is_main(i) ? "true" : "false")
             << ", \"Calls\": " << stats.calls.load()
             << ", \"InFlight\": " << stats.in_flight.load()
             << ", \"Errors\": " << stats.errors.load()
             << ", \"BusySeconds\": " << static_cast<double>(stats.busy_ns.load()) / 1e9 << "}";
    }
    json << "], \"MainInterpreter\": " << (pool.uses_main_interpreter() ? "true" : "false") << "}";
    const std::string body = json.str();
    OrthancPluginAnswerBuffer(context(), output, body.data(), static_cast<uint32_t>(body.size()),
                              "application/json");
    return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode interpreters_route_safe(OrthancPluginRestOutput* output, const char* url,
                                               const OrthancPluginHttpRequest* request) {
    try {
        return interpreters_route(output, url, request);
    } catch (const std::exception& error) {
        log_error(std::string("Python: /python/interpreters: ") + error.what());
        return OrthancPluginErrorCode_InternalError;
    }
}

}  // namespace

void register_metrics() {
    OrthancPluginRegisterRefreshMetricsCallback(context(), on_refresh_metrics);
    OrthancPluginRegisterRestCallbackNoLock(context(), "/python/interpreters",
                                            interpreters_route_safe);
}

void bind_register_refresh_metrics_callback(py::module_& m, const binding_text<1>& text) {
    // Called by on_refresh_metrics, registered with Orthanc by register_metrics().
    def_registration(m, text, g_python_refresh, [] {});
}

}  // namespace opm
