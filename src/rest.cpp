#include "rest.h"

#include "callbacks.h"
#include "errors.h"
#include "handles.h"
#include "orthanc_handwritten.h"
#include "interpreter_pool.h"
#include "py_bytes.h"
#include "sdk.h"

#include <cxxabi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace opm {

namespace {

/// OrthancPluginRestCallback carries no user data: each route gets its own
/// trampoline, instantiated from a template, up to this many routes.
constexpr size_t max_routes = 256;

/// One regular expression registered with Orthanc, and the callable each
/// interpreter registered for it.
///
/// - Written only while the scripts load (on Orthanc's main thread, before any
///   request can arrive); read concurrently afterwards without a lock.
/// - `callables[i]` belongs to interpreter i: it is created, called and dropped
///   only with that interpreter's GIL held.
struct route {
    std::string regex;
    std::vector<py::object> callables;  ///< by interpreter index; empty handle: not registered
    std::vector<size_t> interpreters;   ///< indexes with a callable, in registration order
    std::atomic<unsigned> next{0};      ///< round-robin start among equally loaded ones
};

std::array<std::unique_ptr<route>, max_routes> g_routes;
size_t g_route_count = 0;

const char* method_name(OrthancPluginHttpMethod method) {
    switch (method) {
        case OrthancPluginHttpMethod_Get: return "GET";
        case OrthancPluginHttpMethod_Post: return "POST";
        case OrthancPluginHttpMethod_Put: return "PUT";
        case OrthancPluginHttpMethod_Delete: return "DELETE";
        default: return "UNKNOWN";
    }
}

py::dict make_dict(uint32_t count, const char* const* keys, const char* const* values) {
    py::dict result;
    for (uint32_t i = 0; i < count; ++i) result[decode_text(keys[i])] = decode_text(values[i]);
    return result;
}

/// The keyword arguments of a route call, as the existing plugin passes them.
py::dict request_kwargs(const OrthancPluginHttpRequest* request) {
    py::dict kwargs;
    kwargs["method"] = method_name(request->method);
    py::tuple groups(request->groupsCount);
    for (uint32_t i = 0; i < request->groupsCount; ++i) groups[i] = decode_text(request->groups[i]);
    kwargs["groups"] = groups;
    kwargs["headers"] = make_dict(request->headersCount, request->headersKeys,
                                  request->headersValues);
    if (request->method == OrthancPluginHttpMethod_Get) {
        kwargs["get"] = make_dict(request->getCount, request->getKeys, request->getValues);
    } else if (request->method == OrthancPluginHttpMethod_Post ||
               request->method == OrthancPluginHttpMethod_Put) {
        kwargs["body"] = py::bytes(static_cast<const char*>(request->body), request->bodySize);
    }
    return kwargs;
}

/// Calls the route's callable of the attached interpreter (its GIL held).
OrthancPluginErrorCode call_route(const py::object& callable, OrthancPluginRestOutput* output,
                                  const char* url, const OrthancPluginHttpRequest* request) {
    borrowed<OrthancPluginRestOutput> py_output(output);
    try {
        callable(py_output.object(), decode_text(url), **request_kwargs(request));
    } catch (const py::error_already_set& error) {
        return report_callback_error((std::string("the REST callback for ") + url).c_str(), error);
    }
    if (!py_output.raw().used()) {
        // Orthanc would close the connection without any response.
        log_error(std::string("Python: the REST callback for ") + url +
                  " returned without answering (call output.AnswerBuffer or "
                  "output.SendHttpStatusCode)");
        return OrthancPluginErrorCode_Plugin;
    }
    return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode handle_rest(size_t id, OrthancPluginRestOutput* output, const char* url,
                                   const OrthancPluginHttpRequest* request) {
    interpreter_pool& pool = interpreter_pool::instance();
    try {
        route& r = *g_routes[id];
        const size_t index = least_loaded(r.interpreters, r.next);
        // Counted first, then checked: finalize() waits for what it did not refuse.
        in_flight_scope busy(pool, index);
        if (!pool.running()) return OrthancPluginErrorCode_Plugin;
        attach_guard attached(index);
        return call_route(r.callables[index], output, url, request);
    } catch (const abi::__forced_unwind&) {
        throw;  // pthread_exit: swallowing it aborts the process
    } catch (const std::exception& error) {
        log_error(std::string("Python: internal error in a REST callback: ") + error.what());
    } catch (...) {
        log_error("Python: unknown internal error in a REST callback");
    }
    return OrthancPluginErrorCode_InternalError;
}

template <size_t Id>
OrthancPluginErrorCode rest_trampoline(OrthancPluginRestOutput* output, const char* url,
                                       const OrthancPluginHttpRequest* request) {
    return handle_rest(Id, output, url, request);
}

template <size_t... Ids>
constexpr std::array<OrthancPluginRestCallback, sizeof...(Ids)> make_trampolines(
    std::index_sequence<Ids...>) {
    return {&rest_trampoline<Ids>...};
}

constexpr auto g_trampolines = make_trampolines(std::make_index_sequence<max_routes>{});

void register_rest_callback(const std::string& regex, py::function callback) {
    check_registration_open("RegisterRestCallback");
    interpreter_pool& pool = interpreter_pool::instance();
    const size_t index = pool.current_index();

    route* target = nullptr;
    for (size_t i = 0; i < g_route_count; ++i) {
        if (g_routes[i]->regex == regex) target = g_routes[i].get();
    }
    if (target == nullptr) {
        if (g_route_count == max_routes)
            raise_orthanc_exception(OrthancPluginErrorCode_NotEnoughMemory,
                                    "too many REST routes (at most 256)");
        const size_t id = g_route_count++;
        g_routes[id] = std::make_unique<route>();
        target = g_routes[id].get();
        target->regex = regex;
        target->callables.resize(pool.size());
        OrthancPluginRegisterRestCallbackNoLock(context(), regex.c_str(), g_trampolines[id]);
    }
    if (!target->callables[index]) target->interpreters.push_back(index);
    target->callables[index] = std::move(callback);
}

}  // namespace

void bind_register_rest_callback(py::module_& module) {
    module.def("RegisterRestCallback", &register_rest_callback, py::arg("pathRegularExpression"),
               py::arg("callback"),
               "Registers callback(output, uri, **request) for the URIs matching the regular "
               "expression. Call while the script loads.");
}

void finalize_rest(size_t index) {
    for (size_t i = 0; i < g_route_count; ++i) {
        if (index < g_routes[i]->callables.size()) g_routes[i]->callables[index] = py::object();
    }
}

void forget_rest(size_t index) {
    for (size_t i = 0; i < g_route_count; ++i) {
        std::vector<size_t>& registered = g_routes[i]->interpreters;
        registered.erase(std::remove(registered.begin(), registered.end(), index),
                         registered.end());
    }
}

void reset_rest() {
    for (size_t i = 0; i < g_route_count; ++i) g_routes[i].reset();
    g_route_count = 0;
}

}  // namespace opm
