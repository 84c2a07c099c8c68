// RegisterHttpAuthentication (SDK 1.12.9): every HTTP request authenticated by
// Python before Orthanc serves it, in any interpreter that registered a callback.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 9)

namespace {

/// An exception or a malformed answer returns an error code, and Orthanc then
/// refuses the request: fail closed.
const family<OrthancPluginErrorCode> g_authentication{"the HTTP authentication callback",
                                                      OrthancPluginErrorCode_Plugin};

/// Reads the callback's answer: a status, or (status, data) where data is the
/// payload handed to the REST callbacks (GRANTED) or the path to redirect to
/// (REDIRECT). Anything else raises: the caller then denies the request.
OrthancPluginHttpAuthenticationStatus read_answer(const py::object& answer,
                                                  OrthancPluginMemoryBuffer* payload,
                                                  OrthancPluginMemoryBuffer* redirection) {
    py::object status = answer;
    py::object data = py::none();
    if (py::isinstance<py::tuple>(answer)) {
        py::tuple pair = answer.cast<py::tuple>();
        if (pair.size() != 2)
            throw py::type_error(
                "the HTTP authentication callback must return a status or "
                "(status, data)");
        status = pair[0];
        data = pair[1];
    }
    // A bool is an int, and False == GRANTED: a callback written like a request
    // filter (return token == secret) would grant what it meant to refuse.
    if (!PyLong_Check(status.ptr()) || PyBool_Check(status.ptr()))
        throw py::type_error("the HTTP authentication callback returned " +
                             py::repr(status).cast<std::string>() +
                             " instead of an HttpAuthenticationStatus");
    const long value = status.cast<long>();
    switch (value) {
        case OrthancPluginHttpAuthenticationStatus_Granted:
            if (!data.is_none()) fill_buffer(payload, data, "the authentication payload");
            break;
        case OrthancPluginHttpAuthenticationStatus_Redirect:
            if (!py::isinstance<py::str>(data))
                throw py::type_error(
                    "HttpAuthenticationStatus.REDIRECT needs the path to "
                    "redirect to: return (status, path)");
            fill_buffer(redirection, data, "the redirection");
            break;
        case OrthancPluginHttpAuthenticationStatus_Unauthorized:
        case OrthancPluginHttpAuthenticationStatus_Forbidden:
            if (!data.is_none()) throw py::type_error("UNAUTHORIZED and FORBIDDEN take no data");
            break;
        default: throw py::value_error("not an HttpAuthenticationStatus: " + std::to_string(value));
    }
    return static_cast<OrthancPluginHttpAuthenticationStatus>(value);
}

OrthancPluginErrorCode on_authentication(
    OrthancPluginHttpAuthenticationStatus* status, OrthancPluginMemoryBuffer* payload,
    OrthancPluginMemoryBuffer* redirection, const char* uri, const char* ip, uint32_t headers_count,
    const char* const* headers_keys, const char* const* headers_values, uint32_t get_count,
    const char* const* get_keys, const char* const* get_values) {
    *status = OrthancPluginHttpAuthenticationStatus_Forbidden;
    return dispatch(g_authentication, [&](const callables& callbacks, size_t) {
        py::object answer = callbacks.front()(
            decode_text(uri), py::arg("ip") = decode_text(ip),
            py::arg("headers") = string_map(headers_count, headers_keys, headers_values),
            py::arg("get") = string_map(get_count, get_keys, get_values));
        *status = read_answer(answer, payload, redirection);
        return OrthancPluginErrorCode_Success;
    });
}

}  // namespace

void bind_register_http_authentication(py::module_& m, const binding_text<1>& text) {
    text.def(m, [name = text.name](py::function callback) {
        plugin_state& current = state();
        const callback_list* list = current.families.find(g_authentication);
        if (list != nullptr && list->registered_in(current.pool.current_index()))
            raise_orthanc_exception(OrthancPluginErrorCode_BadSequenceOfCalls,
                                    "RegisterHttpAuthentication: a callback is already "
                                    "registered (Orthanc accepts one)");
        add_registration(g_authentication, name, py::object(std::move(callback)), [] {
            check_sdk(OrthancPluginRegisterHttpAuthentication(context(), on_authentication));
        });
    });
}

#endif

}  // namespace opm
