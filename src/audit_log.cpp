// RegisterAuditLogHandler (SDK 1.12.9): the audit logs of Orthanc and its plugins
// (EmitAuditLog) handed to Python, in any interpreter that registered a handler.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 9)

// The family and trampoline below are named in generator/manifest.toml
// (`registers`): the generated module defines their registration functions.

const family<OrthancPluginErrorCode> g_audit_log{"the audit log handler",
                                                 OrthancPluginErrorCode_Plugin};

OrthancPluginErrorCode on_audit_log(const char* source_plugin, const char* user_id,
                                    OrthancPluginResourceType resource_type,
                                    const char* resource_id, const char* action,
                                    const void* log_data, uint32_t log_data_size) {
    return dispatch(g_audit_log, [&](const callables& handlers, size_t) {
        py::bytes data(static_cast<const char*>(log_data), log_data_size);
        for (const py::object& handler : handlers)
            handler(decode_text(source_plugin), decode_text(user_id),
                    static_cast<int>(resource_type), decode_text(resource_id), decode_text(action),
                    data);
        return OrthancPluginErrorCode_Success;
    });
}

#endif

}  // namespace opm
