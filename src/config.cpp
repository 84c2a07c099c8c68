#include "config.h"

#include "interpreter_pool.h"
#include "sdk.h"

#include <json/json.h>

#include <sched.h>
#include <algorithm>
#include <filesystem>
#include <sstream>

namespace opm {

namespace {

namespace fs = std::filesystem;

/// The value of `flat` at the top level, or of `key` inside the "Python" section.
const Json::Value* find_option(const Json::Value& root, const char* flat, const char* key) {
    if (root.isMember(flat)) return &root[flat];
    if (root.isMember("Python") && root["Python"].isObject() && root["Python"].isMember(key))
        return &root["Python"][key];
    return nullptr;
}

/// An option whose value is a path: PythonScript, or Python.Path...
struct path_option {
    const char* flat;
    const char* key;
    std::string plugin_config::* field;
};

unsigned parse_interpreters(const Json::Value& value, unsigned cpu_count) {
    if (value.isString() && value.asString() == "auto")
        return static_cast<unsigned>(std::clamp<size_t>(cpu_count, 1, max_interpreters));
    // isInt64() first: asInt64() throws on a number out of its range (1e19).
    if (value.isIntegral() && value.isInt64() && value.asInt64() >= 1 &&
        value.asInt64() <= static_cast<int64_t>(max_interpreters))
        return static_cast<unsigned>(value.asInt64());
    if (value.isString()) {
        // Orthanc configurations often hold numbers as strings ("4"): accept them.
        const std::string text = value.asString();
        char* end = nullptr;
        const long parsed = std::strtol(text.c_str(), &end, 10);
        if (!text.empty() && *end == '\0' && parsed >= 1 &&
            parsed <= static_cast<long>(max_interpreters))
            return static_cast<unsigned>(parsed);
    }
    Json::StreamWriterBuilder writer;
    writer["indentation"] = "";       // one line
    writer["commentStyle"] = "None";  // the value only, not the comments around it
    throw config_error("PythonInterpreters must be an integer from 1 to " +
                       std::to_string(max_interpreters) + " or \"auto\", not " +
                       Json::writeString(writer, value));
}

/// The libOrthancPython* files (the existing Python plugin) that Orthanc's "Plugins"
/// option loads besides this one: two embedded Pythons in one process abort it.
std::vector<std::string> find_other_python_plugins(const Json::Value& root) {
    std::vector<std::string> found;
    if (!root.isMember("Plugins") || !root["Plugins"].isArray()) return found;
    auto consider = [&found](const fs::path& file) {
        const std::string name = file.filename().string();
        if (name.rfind("libOrthancPython", 0) == 0 && name.rfind("libOrthancPythonMulti", 0) != 0)
            found.push_back(file.string());
    };
    for (const Json::Value& entry : root["Plugins"]) {
        if (!entry.isString()) continue;
        std::error_code ec;
        const fs::path path(entry.asString());
        if (fs::is_directory(path, ec)) {
            for (const auto& item : fs::directory_iterator(path, ec)) consider(item.path());
        } else {
            consider(path);
        }
    }
    return found;
}

}  // namespace

plugin_config parse_config(const std::string& json, unsigned cpu_count) {
    Json::Value root;
    Json::CharReaderBuilder builder;
    std::string errors;
    std::istringstream stream(json);
    if (!Json::parseFromStream(builder, stream, &root, &errors) || !root.isObject())
        throw config_error("cannot parse Orthanc's configuration: " + errors);

    plugin_config config;
    // Paths, made absolute. An empty string means none, and the option's other form
    // (flat or in the "Python" section) is not looked at then.
    const path_option paths[] = {
        {"PythonScript", "Path", &plugin_config::script},
        {"PythonMainScript", "MainScript", &plugin_config::main_script},
        {"PythonVirtualEnv", "VirtualEnv", &plugin_config::virtual_env},
        {"PythonHome", "Home", &plugin_config::home},
    };
    for (const path_option& option : paths) {
        const Json::Value* v = find_option(root, option.flat, option.key);
        if (v == nullptr) continue;
        if (!v->isString()) throw config_error(std::string(option.flat) + " must be a string");
        if (!v->asString().empty()) config.*option.field = fs::absolute(v->asString()).string();
    }
    if (const Json::Value* v = find_option(root, "PythonVerbose", "Verbose")) {
        if (!v->isBool()) throw config_error("PythonVerbose must be true or false");
        config.verbose = v->asBool();
    }
    if (const Json::Value* v = find_option(root, "PythonInterpreters", "Interpreters"))
        config.interpreters = parse_interpreters(*v, cpu_count);
    config.other_python_plugins = find_other_python_plugins(root);
    return config;
}

plugin_config read_config(OrthancPluginContext* context) {
    sdk_string json(OrthancPluginGetConfiguration(context));
    if (json.empty()) throw config_error("Orthanc returned no configuration");
    cpu_set_t cpus;
    const unsigned usable = sched_getaffinity(0, sizeof(cpus), &cpus) == 0
                                ? static_cast<unsigned>(CPU_COUNT(&cpus))
                                : 1;
    return parse_config(json.str(), usable);
}

}  // namespace opm
