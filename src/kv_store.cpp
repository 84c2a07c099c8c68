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

void bind_check_version(py::module_& m, const binding_text<0>& text) {
    text.def(m, []() { return OrthancPluginCheckVersion(context()); });
}

void bind_check_version_advanced(py::module_& m, const binding_text<3>& text) {
    text.def(m, [](int32_t major, int32_t minor, int32_t revision) {
        return OrthancPluginCheckVersionAdvanced(context(), major, minor, revision);
    });
}

void bind_create_memory_buffer(py::module_& m, const binding_text<1>& text) {
    text.def(m, [](uint32_t size) {
        memory_buffer buffer;
        check_sdk(without_gil(
            [&] { return OrthancPluginCreateMemoryBuffer(context(), buffer.get(), size); }));
        if (size > 0) std::memset(buffer.get()->data, 0, size);  // Orthanc leaves it as is
        return buffer.bytes();
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 8)

namespace {

/// Calls `lookup(context, &found, buffer, args...)` (an SDK function) without
/// the GIL: the bytes it found, or None.
template <typename Lookup, typename... Args>
py::object value_or_none(Lookup lookup, Args... args) {
    uint8_t found = 0;
    memory_buffer value;
    check_sdk(without_gil([&] { return lookup(context(), &found, value.get(), args...); }));
    if (!found) return py::none();
    return value.bytes();
}

}  // namespace

void bind_get_key_value(py::module_& m, const binding_text<2>& text) {
    text.def(m, [](const std::string& store_id, const std::string& key) {
        return value_or_none(OrthancPluginGetKeyValue, store_id.c_str(), key.c_str());
    });
}

void bind_dequeue_value(py::module_& m, const binding_text<2>& text) {
    text.def(m, [](const std::string& queue_id, int origin) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        // Deprecated since 1.12.10 for Reserve/Acknowledge; scripts still call it.
        return value_or_none(OrthancPluginDequeueValue, queue_id.c_str(),
                             static_cast<OrthancPluginQueueOrigin>(origin));
#pragma GCC diagnostic pop
    });
}

void bind_get_queue_size(py::module_& m, const binding_text<1>& text) {
    text.def(m, [](const std::string& queue_id) {
        uint64_t size = 0;
        check_sdk(without_gil(
            [&] { return OrthancPluginGetQueueSize(context(), queue_id.c_str(), &size); }));
        return size;
    });
}

void bind_keys_values_iterator_next(py::class_<handle<OrthancPluginKeysValuesIterator>>& cls,
                                    const binding_text<0>& text) {
    text.def(cls,
             leased<OrthancPluginKeysValuesIterator>([](OrthancPluginKeysValuesIterator* iterator) {
                 uint8_t has_value = 0;
                 check_sdk(without_gil([&] {
                     return OrthancPluginKeysValuesIteratorNext(context(), &has_value, iterator);
                 }));
                 // The SDK calls the flag "done", but Orthanc sets it while a pair was read,
                 // and the existing plugin returns it as it is: `while it.Next(): ...`.
                 return has_value != 0;
             }));
}

#endif

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 9)

void bind_set_stable_status(py::module_& m, const binding_text<2>& text) {
    text.def(m, [](const std::string& resource_id, int status) {
        uint8_t changed = 0;
        const OrthancPluginErrorCode code = without_gil([&] {
            return OrthancPluginSetStableStatus(context(), &changed, resource_id.c_str(),
                                                static_cast<OrthancPluginStableStatus>(status));
        });
        // The existing plugin's shape: (error code, whether the status changed).
        return py::make_tuple(static_cast<int>(code), static_cast<int>(changed));
    });
}

#endif

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void bind_reserve_queue_value(py::module_& m, const binding_text<3>& text) {
    text.def(m, [](const std::string& queue_id, int origin, uint32_t release_timeout) -> py::tuple {
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
    });
}

#endif

}  // namespace opm
