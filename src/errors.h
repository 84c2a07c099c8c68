// Translation between Python exceptions and Orthanc error codes.
#pragma once

#include <pybind11/pybind11.h>

#include <orthanc/OrthancCPlugin.h>

#include <initializer_list>
#include <string>
#include <utility>

namespace opm {

namespace py = pybind11;

/// Adds the `OrthancException` type to the module being initialized.
void bind_errors(py::module_& module);

/// Raises orthanc.OrthancException(code, description) of the current interpreter;
/// the description is Orthanc's text for `code` unless one is given.
/// Call with the GIL held; always throws py::error_already_set.
[[noreturn]] void raise_orthanc_exception(OrthancPluginErrorCode code,
                                          const char* description = nullptr);

/// Raises orthanc.OrthancException if `code` is not Success.
inline void check_sdk(OrthancPluginErrorCode code) {
    if (code != OrthancPluginErrorCode_Success) raise_orthanc_exception(code);
}

/// Installs __getattr__ on a module (PEP 562) or a class so that using one of
/// `names` (Python name, first SDK version) raises AttributeError naming the Orthanc
/// version that has it, since the SDK `sdk` the plugin was built with lacks it.
/// Other missing names raise Python's usual AttributeError. GIL held.
void newer_sdk_attributes(py::object target, const char* scope, const char* sdk,
                          std::initializer_list<std::pair<const char*, const char*>> names);

/// The traceback of `error` as Python prints it. Call in the interpreter that
/// raised it, with its GIL held.
std::string format_exception(const py::error_already_set& error);

/// The Orthanc error code for an exception that left a callback: the code of an
/// orthanc.OrthancException, else OrthancPluginErrorCode_Plugin.
OrthancPluginErrorCode error_code_of(const py::error_already_set& error);

/// Logs `what` and the traceback of `error` to the Orthanc log; returns the code
/// the callback should hand back to Orthanc. GIL held.
OrthancPluginErrorCode report_callback_error(const char* what, const py::error_already_set& error);

}  // namespace opm
