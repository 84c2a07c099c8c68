// Access to the Orthanc plugin context and the SDK helpers every family uses.
#pragma once

#include <orthanc/OrthancCPlugin.h>
#include "no_copy.h"

#include <string>
#include <type_traits>

namespace opm {

/// The context Orthanc handed to OrthancPluginInitialize; valid until Finalize.
OrthancPluginContext* context();
void set_context(OrthancPluginContext* context);

void log_info(const std::string& message);
void log_warning(const std::string& message);
void log_error(const std::string& message);

/// Owns a char* string allocated by the SDK; frees it on destruction.
class sdk_string : no_copy {
public:
    explicit sdk_string(char* value) : value_(value) {}
    ~sdk_string();

    bool empty() const { return value_ == nullptr; }
    std::string str() const { return value_ ? std::string(value_) : std::string(); }

private:
    char* value_;
};

/// The function type of the C callback that an SDK registration function
/// `OrthancPluginRegister...(context, callback)` takes: the generated header
/// declares a family's trampoline with it, `trampoline_of<decltype(&F)> on_x;`,
/// so that the compiler checks the family file's definition against the SDK.
template <typename Registration>
struct trampoline_of_t;
template <typename Result, typename Callback>
struct trampoline_of_t<Result (*)(OrthancPluginContext*, Callback)> {
    using type = std::remove_pointer_t<Callback>;
};
template <typename Registration>
using trampoline_of = typename trampoline_of_t<Registration>::type;

}  // namespace opm
