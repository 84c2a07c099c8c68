#include "errors.h"

#include "py_bytes.h"
#include "sdk.h"

#include <string>
#include <vector>

namespace opm {

namespace {

/// orthanc.OrthancException of the current interpreter (each has its own).
py::object orthanc_exception_type() {
    return py::module_::import("orthanc").attr("OrthancException");
}

}  // namespace

void bind_errors(py::module_& module) {
    // Created per module object, so each interpreter has its own class.
    py::handle type(PyErr_NewExceptionWithDoc(
        "orthanc.OrthancException",
        "An error reported by Orthanc; args are (error code: int, description: str).",
        PyExc_Exception, nullptr));
    if (!type) throw py::error_already_set();
    module.add_object("OrthancException", type);
}

void raise_orthanc_exception(OrthancPluginErrorCode code, const char* description) {
    if (description == nullptr && context() != nullptr)
        description = OrthancPluginGetErrorDescription(context(), code);
    py::object args =
        py::make_tuple(static_cast<int>(code), description ? description : "Unknown error");
    PyErr_SetObject(orthanc_exception_type().ptr(), args.ptr());
    throw py::error_already_set();
}

void newer_sdk_attributes(py::object target, const char* scope, const char* sdk,
                          std::initializer_list<std::pair<const char*, const char*>> names) {
    std::vector<std::pair<std::string, std::string>> known(names.begin(), names.end());
    auto raise = [known, scope = std::string(scope), sdk = std::string(sdk)](
                     const std::string& name, const std::string& otherwise) {
        for (const auto& [python_name, since] : known) {
            if (python_name == name)
                throw py::attribute_error(scope + "." + name + " needs Orthanc " + since +
                                          " or newer: this plugin was built with the Orthanc "
                                          "SDK " +
                                          sdk);
        }
        throw py::attribute_error(otherwise);
    };
    if (py::isinstance<py::module_>(target)) {
        target.attr("__getattr__") = py::cpp_function([raise](const std::string& name) {
            raise(name, "module 'orthanc' has no attribute '" + name + "'");
        });
    } else {
        const std::string type_name = py::str(target.attr("__name__"));
        target.attr("__getattr__") = py::cpp_function(
            [raise, type_name](py::handle, const std::string& name) {
                raise(name, "'" + type_name + "' object has no attribute '" + name + "'");
            },
            py::is_method(target));
    }
}

std::string format_exception(const py::error_already_set& error) {
    try {
        py::object format = py::module_::import("traceback").attr("format_exception");
        py::object lines = format(error.type(), error.value(), error.trace());
        std::string text = loggable_text(py::str("").attr("join")(lines));
        while (!text.empty() && text.back() == '\n') text.pop_back();
        return text;
    } catch (const py::error_already_set&) {
        return error.what();
    }
}

OrthancPluginErrorCode error_code_of(const py::error_already_set& error) {
    try {
        if (error.matches(orthanc_exception_type())) {
            py::tuple args = error.value().attr("args");
            if (args.size() >= 1 && py::isinstance<py::int_>(args[0])) {
                const int code = args[0].cast<int>();
                if (code > 0) return static_cast<OrthancPluginErrorCode>(code);
            }
        }
    } catch (const py::error_already_set&) {
    }
    return OrthancPluginErrorCode_Plugin;
}

OrthancPluginErrorCode report_callback_error(const char* what, const py::error_already_set& error) {
    log_error(std::string("Python: exception in ") + what + ":\n" + format_exception(error));
    return error_code_of(error);
}

}  // namespace opm
