// The plugin's configuration, read from Orthanc's JSON configuration.
#pragma once

#include <orthanc/OrthancCPlugin.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace opm {

/// A configuration value that cannot be used; the message names the option.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct plugin_config {
    std::string script;  ///< absolute path; empty: no script, plugin inactive
    /// PythonMainScript / Python.MainScript: absolute path of a script for the main
    /// interpreter, alongside the sub-interpreters (empty: none).
    std::string main_script;
    bool verbose = false;       ///< PythonVerbose / Python.Verbose
    unsigned interpreters = 1;  ///< PythonInterpreters / Python.Interpreters ("auto": cores)
    std::string virtual_env;    ///< PythonVirtualEnv / Python.VirtualEnv; empty: our own
    std::string home;           ///< PythonHome / Python.Home; empty: the build's base Python
    std::vector<std::string> other_python_plugins;  ///< libOrthancPython* files Orthanc loads too
};

/// Parses Orthanc's configuration (the JSON text of OrthancPluginGetConfiguration).
/// `cpu_count` resolves "auto". Throws config_error on a bad value.
plugin_config parse_config(const std::string& json, unsigned cpu_count);

/// Reads the configuration from Orthanc.
plugin_config read_config(OrthancPluginContext* context);

}  // namespace opm
