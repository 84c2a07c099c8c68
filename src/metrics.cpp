#include "metrics.h"

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <sstream>
#include <string>

namespace opm {

namespace {

/// Python callbacks of RegisterRefreshMetricsCallback.
callback_list g_python_refresh;

void publish(const std::string& name, double value) {
    OrthancPluginSetMetricsValue(context(), name.c_str(), static_cast<float>(value),
                                 OrthancPluginMetricsType_Default);
}

/// Called by Orthanc when /tools/metrics-prometheus is read: the interpreters'
/// counters (orthanc_python_*), then the script's own refresh callbacks.
void on_refresh_metrics() {
    interpreter_pool& pool = interpreter_pool::instance();
    if (!pool.running()) return;
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
    const std::vector<size_t>& registered = g_python_refresh.interpreters();
    if (registered.empty()) return;
    const size_t index = registered.front();
    call_in(index, "the metrics refresh callback", false, [&] {
        for (const py::object& callback : g_python_refresh.of(index)) callback();
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
    interpreter_pool& pool = interpreter_pool::instance();
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

void bind_register_refresh_metrics_callback(py::module_& m, const binding_text& text) {
    // Called by on_refresh_metrics, registered with Orthanc by register_metrics().
    def_registration(m, text, g_python_refresh, "callback", [] {});
}

}  // namespace opm
