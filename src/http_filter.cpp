// RegisterIncomingHttpRequestFilter: every HTTP request allowed or denied by Python
// before Orthanc serves it, in any interpreter that registered a filter.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

// The family and trampoline below are named in generator/manifest.toml
// (`registers`): the generated module defines the registration function.

/// 0: denied (fail closed).
const family<int32_t> g_http_filter{"the IncomingHttpRequestFilter callback", 0};

/// Every filter must answer True; anything else (False, not a bool, an
/// exception) denies the request: fail closed.
int32_t on_http_request(OrthancPluginHttpMethod method, const char* uri, const char* ip,
                        uint32_t headers_count, const char* const* headers_keys,
                        const char* const* headers_values, uint32_t get_count,
                        const char* const* get_keys, const char* const* get_values) {
    return dispatch(g_http_filter, [&](const callables& callbacks, size_t) {
        py::str py_uri = decode_text(uri);
        py::dict kwargs;
        kwargs["method"] = static_cast<int>(method);
        kwargs["ip"] = decode_text(ip);
        kwargs["headers"] = string_map(headers_count, headers_keys, headers_values);
        kwargs["get"] = string_map(get_count, get_keys, get_values);
        for (const py::object& callback : callbacks) {
            py::object answer = callback(py_uri, **kwargs);
            if (!PyBool_Check(answer.ptr())) {
                log_error("Python: the IncomingHttpRequestFilter callback returned " +
                          py::repr(answer).cast<std::string>() +
                          " instead of True or False: the request is denied");
                return int32_t{0};
            }
            if (answer.ptr() != Py_True) return int32_t{0};
        }
        return int32_t{1};
    });
}

}  // namespace opm
