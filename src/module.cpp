#include "module.h"

#include "errors.h"
#include "orthanc_handwritten.h"
#include "plugin_state.h"

#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>

namespace opm {

void bind_get_interpreter_index(py::module_& m, const binding_text<0>& text) {
    text.def(m, [] { return state().pool.current_index(); });
}

void bind_get_interpreter_count(py::module_& m, const binding_text<0>& text) {
    text.def(m, [] { return state().pool.script_interpreters(); });
}

}  // namespace opm

namespace py = pybind11;

PYBIND11_MODULE(orthanc, m, py::multiple_interpreters::per_interpreter_gil()) {
    m.doc() = "Orthanc plugin SDK for Python (orthanc-python-multi)";
    opm::bind_errors(m);
    opm::bind_sdk(m);
}

namespace opm {

void register_orthanc_module() {
    // The inittab outlives Py_FinalizeEx: after Orthanc's /tools/reset, the entry is there.
    for (const _inittab* entry = PyImport_Inittab; entry->name != nullptr; ++entry) {
        if (std::strcmp(entry->name, "orthanc") == 0) return;
    }
    if (PyImport_AppendInittab("orthanc", PyInit_orthanc) != 0)
        throw std::runtime_error("cannot register the orthanc module");
}

}  // namespace opm
