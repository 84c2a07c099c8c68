// The embedded `orthanc` module, one instance per interpreter.
#pragma once

#include <Python.h>

namespace opm {

/// Makes `import orthanc` find the module; call before Python is initialized.
void register_orthanc_module();

}  // namespace opm
