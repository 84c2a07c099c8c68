#include "config.h"

#include "interpreter_pool.h"
#include "sdk.h"

#include <json/json.h>

#include <sched.h>
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <sstream>

namespace opm {

namespace {

namespace fs = std::filesystem;

/// An option found in the configuration, with the name it was given under.
struct found_option {
    const Json::Value& value;
    std::string name;  ///< "PythonScript", or "Python.Path" in the section
};

/// The option `flat` at the top level, or else `key` inside the "Python" section.
std::optional<found_option> find_option(const Json::Value& root, const char* flat,
                                        const char* key) {
    if (root.isMember(flat)) return found_option{root[flat], flat};
    if (root.isMember("Python") && root["Python"].isMember(key))
        return found_option{root["Python"][key], std::string("Python.") + key};
    return std::nullopt;
}

/// A whole number written in decimal digits only (no sign, no space), within [1, limit].
std::optional<unsigned> whole_number(const std::string& text, unsigned limit) {
    unsigned parsed = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, parsed);
    if (error != std::errc() || stop != end || parsed < 1 || parsed > limit) return std::nullopt;
    return parsed;
}

/// An option whose value is a path: PythonScript, or Python.Path...
struct path_option {
    const char* flat;
    const char* key;
    std::string plugin_config::* field;
};

unsigned parse_interpreters(const found_option& option, unsigned cpu_count) {
    const Json::Value& value = option.value;
    if (value.isString() && value.asString() == "auto")
        return static_cast<unsigned>(std::clamp<size_t>(cpu_count, 1, max_interpreters));
    // isInt64() first: asInt64() throws on a number out of its range (1e19).
    if (value.isIntegral() && value.isInt64() && value.asInt64() >= 1 &&
        value.asInt64() <= static_cast<int64_t>(max_interpreters))
        return static_cast<unsigned>(value.asInt64());
    // Orthanc configurations often hold numbers as strings ("4"): accept them.
    if (value.isString())
        if (auto parsed = whole_number(value.asString(), max_interpreters)) return *parsed;
    Json::StreamWriterBuilder writer;
    writer["indentation"] = "";       // one line
    writer["commentStyle"] = "None";  // the value only, not the comments around it
    throw config_error(option.name + " must be an integer from 1 to " +
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

    // A "Python" value that is not an object is refused, as the existing plugin
    // refuses it: the options meant for it would otherwise be ignored unsaid.
    if (root.isMember("Python") && !root["Python"].isObject())
        throw config_error("the \"Python\" section must be a JSON object");

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
        const auto found = find_option(root, option.flat, option.key);
        if (!found) continue;
        if (!found->value.isString()) throw config_error(found->name + " must be a string");
        const std::string path = found->value.asString();
        if (!path.empty()) config.*option.field = fs::absolute(path).string();
    }
    if (const auto found = find_option(root, "PythonVerbose", "Verbose")) {
        if (!found->value.isBool()) throw config_error(found->name + " must be true or false");
        config.verbose = found->value.asBool();
    }
    if (const auto found = find_option(root, "PythonInterpreters", "Interpreters"))
        config.interpreters = parse_interpreters(*found, cpu_count);
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
