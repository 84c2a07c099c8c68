// The Python environment the plugin runs in, and the libpython of the process.

#include "environment.h"

#include "config.h"
#include "sdk.h"

#include <Python.h>

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace opm {

namespace {

/// Where this plugin file lies, for finding the environment it was installed in.
fs::path plugin_file() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&plugin_file), &info) == 0 || info.dli_fname == nullptr)
        return {};
    return fs::path(info.dli_fname);
}

/// The virtual environment named by PythonVirtualEnv: a venv of this Python version.
python_environment configured_environment(const std::string& folder) {
    const fs::path root(folder);
    const std::string version =
        "python" + std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);
    const fs::path site = root / "lib" / version / "site-packages";
    std::error_code ec;
    if (!fs::is_directory(site, ec))
        throw config_error("PythonVirtualEnv: " + folder + " has no lib/" + version +
                           "/site-packages (a virtual environment of Python " +
                           std::to_string(PY_MAJOR_VERSION) + "." +
                           std::to_string(PY_MINOR_VERSION) + " is needed)");
    python_environment env;
    env.site_dirs.push_back(site.string());
    if (fs::exists(root / "bin" / "python3", ec))
        env.executable = (root / "bin" / "python3").string();
    return env;
}

}  // namespace

python_environment find_environment(const std::string& virtual_env) {
    if (!virtual_env.empty()) return configured_environment(virtual_env);
    python_environment env;
    const fs::path package = plugin_file().parent_path().parent_path();
    const fs::path site = package.parent_path();
    if (package.filename() != "orthanc_python_multi" || site.filename() != "site-packages")
        return env;  // a build tree: only the base installation
    env.site_dirs.push_back(site.string());
    const fs::path prefix = site.parent_path().parent_path().parent_path();
    std::error_code ec;
    if (fs::exists(prefix / "pyvenv.cfg", ec) && fs::exists(prefix / "bin" / "python3", ec))
        env.executable = (prefix / "bin" / "python3").string();
    return env;
}

void promote_libpython() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) != 0 &&
        info.dli_fname != nullptr) {
        if (dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr)
            log_warning(std::string("Python: cannot re-open ") + info.dli_fname + " globally");
    }
}

std::string other_libpython() {
    Dl_info info{};
    std::string ours;
    if (dladdr(reinterpret_cast<void*>(&Py_InitializeFromConfig), &info) != 0 && info.dli_fname)
        ours = fs::weakly_canonical(info.dli_fname).string();
    struct search {
        std::string ours;
        std::string found;
    } state{ours, {}};
    dl_iterate_phdr(
        [](dl_phdr_info* object, size_t, void* data) {
            auto* s = static_cast<search*>(data);
            const char* name = object->dlpi_name;
            if (name == nullptr || std::strstr(name, "libpython") == nullptr) return 0;
            std::error_code ec;
            if (fs::weakly_canonical(name, ec).string() != s->ours) {
                s->found = name;
                return 1;
            }
            return 0;
        },
        &state);
    return state.found;
}

void keep_plugin_loaded() {
    const fs::path self = plugin_file();
    if (self.empty() || dlopen(self.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == nullptr)
        log_warning("Python: cannot keep the plugin loaded after its stop");
}

}  // namespace opm
