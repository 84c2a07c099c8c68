// Key-value stores, queues and the stable status (SDK 1.12.8 and later), and the
// version checks: hand-written because their C outputs ("found" flags next to a
// buffer, a "done" flag) take the Python shapes of the existing plugin 7.1.
//
// The stores and queues live in Orthanc's database, so they are the state that
// every interpreter sees: module globals are per interpreter, these are not.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <cstring>
#include <string>

namespace opm {

void bind_check_version(py::module_& m, const binding_text& text) {
    m.def(text.name, []() { return OrthancPluginCheckVersion(context()); }, text.doc);
}

void bind_check_version_advanced(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](int32_t major, int32_t minor, int32_t revision) {
            return OrthancPluginCheckVersionAdvanced(context(), major, minor, revision);
        },
        py::arg("expectedMajor"), py::arg("expectedMinor"), py::arg("expectedRevision"), text.doc);
}

void bind_create_memory_buffer(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](uint32_t size) {
            memory_buffer buffer;
            check_sdk(without_gil(
                [&] { return OrthancPluginCreateMemoryBuffer(context(), buffer.get(), size); }));
            if (size > 0) std::memset(buffer.get()->data, 0, size);  // Orthanc leaves it as is
            return buffer.bytes();
        },
        py::arg("size"), text.doc);
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 8)

namespace {

/// Runs `lookup(&found, buffer)` (an SDK call) without the GIL: the bytes it
/// found, or None.
template <typename Lookup>
py::object value_or_none(Lookup&& lookup) {
    uint8_t found = 0;
    memory_buffer value;
    check_sdk(without_gil([&] { return lookup(&found, value.get()); }));
    if (!found) return py::none();
    return value.bytes();
}

}  // namespace

void bind_get_key_value(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& store_id, const std::string& key) {
            return value_or_none([&](uint8_t* found, OrthancPluginMemoryBuffer* value) {
                return OrthancPluginGetKeyValue(context(), found, value, store_id.c_str(),
                                                key.c_str());
            });
        },
        py::arg("storeId"), py::arg("key"), text.doc);
}

void bind_dequeue_value(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& queue_id, int origin) {
            return value_or_none([&](uint8_t* found, OrthancPluginMemoryBuffer* value) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
                // Deprecated since 1.12.10 for Reserve/Acknowledge; scripts still call it.
                return OrthancPluginDequeueValue(context(), found, value, queue_id.c_str(),
                                                 static_cast<OrthancPluginQueueOrigin>(origin));
#pragma GCC diagnostic pop
            });
        },
        py::arg("queueId"), py::arg("origin"), text.doc);
}

void bind_get_queue_size(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& queue_id) {
            uint64_t size = 0;
            check_sdk(without_gil(
                [&] { return OrthancPluginGetQueueSize(context(), queue_id.c_str(), &size); }));
            return size;
        },
        py::arg("queueId"), text.doc);
}

void bind_keys_values_iterator_next(py::class_<handle<OrthancPluginKeysValuesIterator>>& cls,
                                    const binding_text& text) {
    cls.def(text.name,
            leased<OrthancPluginKeysValuesIterator>([](OrthancPluginKeysValuesIterator* iterator) {
                uint8_t has_value = 0;
                check_sdk(without_gil([&] {
                    return OrthancPluginKeysValuesIteratorNext(context(), &has_value, iterator);
                }));
                // The SDK calls the flag "done", but Orthanc sets it while a pair was read,
                // and the existing plugin returns it as it is: `while it.Next(): ...`.
                return has_value != 0;
            }),
            text.doc);
}

#endif

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 9)

void bind_set_stable_status(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& resource_id, int status) {
            uint8_t changed = 0;
            const OrthancPluginErrorCode code = without_gil([&] {
                return OrthancPluginSetStableStatus(context(), &changed, resource_id.c_str(),
                                                    static_cast<OrthancPluginStableStatus>(status));
            });
            // The existing plugin's shape: (error code, whether the status changed).
            return py::make_tuple(static_cast<int>(code), static_cast<int>(changed));
        },
        py::arg("resourceId"), py::arg("stableStatus"), text.doc);
}

#endif

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void bind_reserve_queue_value(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& queue_id, int origin, uint32_t release_timeout) -> py::tuple {
            uint8_t found = 0;
            uint64_t value_id = 0;
            memory_buffer value;
            check_sdk(without_gil([&] {
                return OrthancPluginReserveQueueValue(
                    context(), &found, value.get(), &value_id, queue_id.c_str(),
                    static_cast<OrthancPluginQueueOrigin>(origin), release_timeout);
            }));
            if (!found) return py::make_tuple(py::none(), py::none());
            return py::make_tuple(value.bytes(), value_id);
        },
        py::arg("queueId"), py::arg("origin"), py::arg("releaseTimeout"), text.doc);
}

#endif

}  // namespace opm
