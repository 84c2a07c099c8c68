// The Python environment the plugin runs in, and the libpython of the process.
#pragma once

#include <string>
#include <vector>

namespace opm {

/// What the interpreters add to sys.path, and the venv's python for PyConfig.
struct python_environment {
    std::vector<std::string> site_dirs;  ///< site-packages folders to add to sys.path
    std::string executable;              ///< a virtual environment's python; empty: none
};

/// The environment the plugin was installed into (site-packages holds
/// orthanc_python_multi/lib/<this file>; a virtual environment has pyvenv.cfg),
/// or the virtual environment `virtual_env` (PythonVirtualEnv) when not empty.
/// Throws config_error when `virtual_env` is not a venv of this Python version.
python_environment find_environment(const std::string& virtual_env);

/// Orthanc loads plugins with RTLD_LOCAL: extension modules (math, via datetime)
/// then fail with "undefined symbol: PyFloat_Type". Re-opens libpython globally.
void promote_libpython();

/// Another libpython loaded in the process (the existing Python plugin), or "":
/// two embedded Pythons abort the process, so the plugin refuses instead.
std::string other_libpython();

/// Keeps this plugin's library (and libpython with it) loaded until the process
/// exits, whatever dlclose Orthanc calls: for a runtime left running at stop.
void keep_plugin_loaded();

}  // namespace opm
