#include "module.h"

#include "errors.h"
#include "interpreter_pool.h"
#include "orthanc_handwritten.h"

#include <pybind11/pybind11.h>

#include <stdexcept>

namespace opm {

void bind_get_interpreter_index(py::module_& m, const binding_text& text) {
    m.def(text.name, [] { return interpreter_pool::instance().current_index(); }, text.doc);
}

void bind_get_interpreter_count(py::module_& m, const binding_text& text) {
    m.def(text.name, [] { return interpreter_pool::instance().script_interpreters(); }, text.doc);
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
    static bool registered = false;
    if (registered) return;
    if (PyImport_AppendInittab("orthanc", PyInit_orthanc) != 0)
        throw std::runtime_error("cannot register the orthanc module");
    registered = true;
}

}  // namespace opm
