// Callbacks about incoming instances: OnStoredInstance, ReceivedInstance, the
// C-STORE and DICOM instance filters.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

// The families and trampolines below are named in generator/manifest.toml
// (`registers`): the generated module defines their registration functions.

const family<OrthancPluginErrorCode> g_stored{"the OnStoredInstance callback",
                                              OrthancPluginErrorCode_Plugin};
/// Fails closed: a modification that failed must not be skipped silently.
const family<OrthancPluginReceivedInstanceAction> g_received{
    "the ReceivedInstance callback", OrthancPluginReceivedInstanceAction_Discard};
/// -1: an error, the C-STORE fails.
const family<int32_t> g_cstore_filter{"the IncomingCStoreInstanceFilter callback", -1};
/// -1: an error, the instance is refused (fail closed).
const family<int32_t> g_dicom_filter{"the IncomingDicomInstanceFilter callback", -1};

OrthancPluginErrorCode on_stored_instance(const OrthancPluginDicomInstance* instance,
                                          const char* instance_id) {
    return dispatch(g_stored, [&](const callables& callbacks, size_t) {
        borrowed<OrthancPluginDicomInstance> dicom(instance);
        py::str id = decode_text(instance_id);
        for (const py::object& callback : callbacks) callback(dicom.object(), id);
        return OrthancPluginErrorCode_Success;
    });
}

/// Runs the ReceivedInstance callbacks in order, each on the previous one's
/// output; a failure discards the instance (fail closed: a modification that
/// failed must not be skipped silently).
OrthancPluginReceivedInstanceAction on_received_instance(OrthancPluginMemoryBuffer64* modified,
                                                         const void* data, uint64_t size,
                                                         OrthancPluginInstanceOrigin origin) {
    return dispatch(g_received, [&](const callables& callbacks, size_t) {
        py::object current = py::bytes(static_cast<const char*>(data), size);
        bool changed = false;
        for (const py::object& callback : callbacks) {
            py::object result = callback(current, static_cast<int>(origin));
            py::object action = result;
            py::object payload = py::none();
            if (py::isinstance<py::tuple>(result) && py::len(result) == 2) {
                action = result[py::int_(0)];
                payload = result[py::int_(1)];
            }
            const int value = action.cast<int>();
            if (value == OrthancPluginReceivedInstanceAction_Discard)
                return OrthancPluginReceivedInstanceAction_Discard;
            if (value == OrthancPluginReceivedInstanceAction_Modify) {
                if (payload.is_none())
                    throw py::type_error("ReceivedInstanceAction.MODIFY needs the new bytes");
                current = payload;
                changed = true;
            } else if (value != OrthancPluginReceivedInstanceAction_KeepAsIs) {
                throw py::value_error("not a ReceivedInstanceAction: " + std::to_string(value));
            }
        }
        if (!changed) return OrthancPluginReceivedInstanceAction_KeepAsIs;
        fill_buffer(modified, current, "the modified instance");
        return OrthancPluginReceivedInstanceAction_Modify;
    });
}

/// 1 stores the instance, 0 discards it with *status as DIMSE status, -1 is an error.
int32_t on_cstore_instance(uint16_t* status, const OrthancPluginDicomInstance* instance) {
    return dispatch(g_cstore_filter, [&](const callables& callbacks, size_t) {
        borrowed<OrthancPluginDicomInstance> dicom(instance);
        for (const py::object& callback : callbacks) {
            const int value = callback(dicom.object()).cast<int>();
            if (value != 0) {
                *status = static_cast<uint16_t>(value);
                return int32_t{0};
            }
        }
        return int32_t{1};
    });
}

/// 1 accepts the instance, 0 discards it, -1 is an error (fail closed).
int32_t on_dicom_instance(const OrthancPluginDicomInstance* instance) {
    return dispatch(g_dicom_filter, [&](const callables& callbacks, size_t) {
        borrowed<OrthancPluginDicomInstance> dicom(instance);
        for (const py::object& callback : callbacks) {
            py::object answer = callback(dicom.object());
            if (!PyBool_Check(answer.ptr()))
                throw py::type_error(
                    "the IncomingDicomInstanceFilter callback must return "
                    "True or False, not " +
                    py::repr(answer).cast<std::string>());
            if (answer.ptr() != Py_True) return int32_t{0};
        }
        return int32_t{1};
    });
}

}  // namespace opm
