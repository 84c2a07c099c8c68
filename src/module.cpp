#include "module.h"

#include "errors.h"
#include "interpreter_pool.h"
#include "py_bytes.h"
#include "rest.h"
#include "sdk.h"

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace opm {

namespace {

using rest_api_read = OrthancPluginErrorCode (*)(OrthancPluginContext*,
                                                 OrthancPluginMemoryBuffer*, const char*);
using rest_api_write = OrthancPluginErrorCode (*)(OrthancPluginContext*,
                                                  OrthancPluginMemoryBuffer*, const char*,
                                                  const void*, uint32_t);
using rest_api_delete = OrthancPluginErrorCode (*)(OrthancPluginContext*, const char*);

/// GET through Orthanc's REST API, the GIL released for the call (the route may
/// be served by Python again, on this thread, in any interpreter).
py::bytes call_read(rest_api_read function, const std::string& uri) {
    memory_buffer answer;
    OrthancPluginErrorCode code;
    {
        release_gil unlocked;
        code = function(context(), answer.get(), uri.c_str());
    }
    check_sdk(code);
    return py::bytes(answer.data(), answer.size());
}

py::bytes call_write(rest_api_write function, const std::string& uri, py::object body) {
    byte_view data(body);
    memory_buffer answer;
    OrthancPluginErrorCode code;
    {
        release_gil unlocked;
        code = function(context(), answer.get(), uri.c_str(), data.data(),
                        static_cast<uint32_t>(data.size()));
    }
    check_sdk(code);
    return py::bytes(answer.data(), answer.size());
}

void call_delete(rest_api_delete function, const std::string& uri) {
    OrthancPluginErrorCode code;
    {
        release_gil unlocked;
        code = function(context(), uri.c_str());
    }
    check_sdk(code);
}

void bind_rest_api(py::module_& m) {
    m.def("RestApiGet", [](const std::string& uri) { return call_read(OrthancPluginRestApiGet, uri); },
          py::arg("uri"), "GET on Orthanc's REST API (built-in routes only); returns the body.");
    m.def("RestApiGetAfterPlugins",
          [](const std::string& uri) { return call_read(OrthancPluginRestApiGetAfterPlugins, uri); },
          py::arg("uri"), "GET on Orthanc's REST API, plugins' routes included.");
    m.def("RestApiPost",
          [](const std::string& uri, py::object body) {
              return call_write(OrthancPluginRestApiPost, uri, std::move(body));
          },
          py::arg("uri"), py::arg("body"), "POST on Orthanc's REST API (built-in routes only).");
    m.def("RestApiPostAfterPlugins",
          [](const std::string& uri, py::object body) {
              return call_write(OrthancPluginRestApiPostAfterPlugins, uri, std::move(body));
          },
          py::arg("uri"), py::arg("body"), "POST on Orthanc's REST API, plugins' routes included.");
    m.def("RestApiPut",
          [](const std::string& uri, py::object body) {
              return call_write(OrthancPluginRestApiPut, uri, std::move(body));
          },
          py::arg("uri"), py::arg("body"), "PUT on Orthanc's REST API (built-in routes only).");
    m.def("RestApiPutAfterPlugins",
          [](const std::string& uri, py::object body) {
              return call_write(OrthancPluginRestApiPutAfterPlugins, uri, std::move(body));
          },
          py::arg("uri"), py::arg("body"), "PUT on Orthanc's REST API, plugins' routes included.");
    m.def("RestApiDelete",
          [](const std::string& uri) { call_delete(OrthancPluginRestApiDelete, uri); },
          py::arg("uri"), "DELETE on Orthanc's REST API (built-in routes only).");
    m.def("RestApiDeleteAfterPlugins",
          [](const std::string& uri) { call_delete(OrthancPluginRestApiDeleteAfterPlugins, uri); },
          py::arg("uri"), "DELETE on Orthanc's REST API, plugins' routes included.");
}

void bind_logging(py::module_& m) {
    m.def("LogInfo", [](const std::string& message) { log_info(message); }, py::arg("message"),
          "Writes an information line to the Orthanc log.");
    m.def("LogWarning", [](const std::string& message) { log_warning(message); },
          py::arg("message"), "Writes a warning line to the Orthanc log.");
    m.def("LogError", [](const std::string& message) { log_error(message); }, py::arg("message"),
          "Writes an error line to the Orthanc log.");
}

void bind_interpreters(py::module_& m) {
    m.def("GetInterpreterIndex", [] { return interpreter_pool::instance().current_index(); },
          "Index (0 to GetInterpreterCount() - 1) of the interpreter running this code.");
    m.def("GetInterpreterCount", [] { return interpreter_pool::instance().size(); },
          "Number of interpreters that run the script (the PythonInterpreters option).");
}

}  // namespace

}  // namespace opm

namespace py = pybind11;

PYBIND11_MODULE(orthanc, m, py::multiple_interpreters::per_interpreter_gil()) {
    m.doc() = "Orthanc plugin SDK for Python (orthanc-python-multi)";
    opm::bind_errors(m);
    opm::bind_logging(m);
    opm::bind_interpreters(m);
    opm::bind_rest_api(m);
    opm::bind_rest(m);
}

namespace opm {

void register_orthanc_module() {
    if (PyImport_AppendInittab("orthanc", PyInit_orthanc) != 0)
        throw std::runtime_error("cannot register the orthanc module");
}

}  // namespace opm
