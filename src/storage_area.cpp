// RegisterStorageArea: the files of Orthanc in Python callbacks, called in
// parallel in the interpreters that registered them.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <cstdint>
#include <cstring>
#include <string>

namespace opm {

namespace {

/// What RegisterStorageArea got (the last registration of an interpreter counts).
struct storage_callbacks {
    py::object create, read, remove;
    py::object read_range;  ///< None: ranges are cut out of read()
};

using storage_entries = std::vector<storage_callbacks>;

const family<OrthancPluginErrorCode, storage_callbacks> g_storage{"the storage area callback",
                                                                  OrthancPluginErrorCode_Plugin};

OrthancPluginErrorCode storage_create(const char* uuid, const void* content, int64_t size,
                                      OrthancPluginContentType type) {
    return dispatch(
        g_storage, "the storage area create callback", [&](const storage_entries& entries, size_t) {
            entries.back().create(
                decode_text(uuid), static_cast<int>(type),
                py::bytes(static_cast<const char*>(content), static_cast<size_t>(size)));
            return OrthancPluginErrorCode_Success;
        });
}

OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                          OrthancPluginContentType type) {
    return dispatch(
        g_storage, "the storage area read callback", [&](const storage_entries& entries, size_t) {
            py::object answer = entries.back().read(decode_text(uuid), static_cast<int>(type));
            fill_buffer(target, answer, "the answer of the storage area read callback");
            return OrthancPluginErrorCode_Success;
        });
}

/// Orthanc allocated `target` with the size of the range. Without a readRange
/// callback, the whole file is read and the range cut out of it.
OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                          OrthancPluginContentType type, uint64_t start) {
    return dispatch(
        g_storage, "the storage area read-range callback",
        [&](const storage_entries& entries, size_t) {
            const storage_callbacks& callbacks = entries.back();
            const py::object& range = callbacks.read_range;
            py::object answer;
            uint64_t offset = start;
            if (range.is_none()) {
                answer = callbacks.read(decode_text(uuid), static_cast<int>(type));
            } else {
                answer = range(decode_text(uuid), static_cast<int>(type), start, target->size);
                offset = 0;
            }
            byte_view bytes(answer);
            if (offset > bytes.size() || bytes.size() - offset < target->size)
                throw py::value_error("the storage area read a range of " +
                                      std::to_string(bytes.size()) + " bytes, shorter than asked");
            std::memcpy(target->data, bytes.data() + offset, target->size);
            return OrthancPluginErrorCode_Success;
        });
}

OrthancPluginErrorCode storage_remove(const char* uuid, OrthancPluginContentType type) {
    return dispatch(g_storage, "the storage area remove callback",
                    [&](const storage_entries& entries, size_t) {
                        entries.back().remove(decode_text(uuid), static_cast<int>(type));
                        return OrthancPluginErrorCode_Success;
                    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 8)

// RegisterStorageArea3 (SDK 1.12.8), in the existing plugin 7.1's shapes: each
// callback returns an Orthanc error code, create with the custom data that Orthanc
// keeps with the attachment and hands back to readRange and remove.

/// What RegisterStorageArea3 got (the last registration of an interpreter counts).
struct storage3_callbacks {
    py::object create, read_range, remove;
};

using storage3_entries = std::vector<storage3_callbacks>;

const family<OrthancPluginErrorCode, storage3_callbacks> g_storage3{"the storage area callback",
                                                                    OrthancPluginErrorCode_Plugin};

py::bytes custom_bytes(const void* data, uint32_t size) {
    return py::bytes(static_cast<const char*>(data), size);
}

/// The error code a callback returned (an int), as Orthanc's.
OrthancPluginErrorCode returned_code(const py::handle& code, const char* what) {
    if (!py::isinstance<py::int_>(code))
        throw py::type_error(std::string(what) + " must return an int error code first");
    return static_cast<OrthancPluginErrorCode>(code.cast<int>());
}

OrthancPluginErrorCode storage_create3(OrthancPluginMemoryBuffer* custom_data, const char* uuid,
                                       const void* content, uint64_t size,
                                       OrthancPluginContentType type,
                                       OrthancPluginCompressionType compression,
                                       const OrthancPluginDicomInstance* instance) {
    return dispatch(g_storage3, "the storage area create callback",
                    [&](const storage3_entries& entries, size_t) {
                        borrowed<OrthancPluginDicomInstance> py_instance(instance);
                        py::object answer = entries.back().create(
                            decode_text(uuid), static_cast<int>(type),
                            static_cast<int>(compression),
                            py::bytes(static_cast<const char*>(content), static_cast<size_t>(size)),
                            instance != nullptr ? py_instance.object() : py::none());
                        py::tuple result = answer.cast<py::tuple>();
                        if (result.size() != 2)
                            throw py::type_error("create must return (errorCode, customData)");
                        const OrthancPluginErrorCode code = returned_code(result[0], "create");
                        if (code != OrthancPluginErrorCode_Success || result[1].is_none())
                            return code;
                        fill_buffer(custom_data, result[1], "the custom data");
                        return OrthancPluginErrorCode_Success;
                    });
}

OrthancPluginErrorCode storage_read_range3(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                           OrthancPluginContentType type, uint64_t start,
                                           const void* custom_data, uint32_t custom_size) {
    return dispatch(
        g_storage3, "the storage area read-range callback",
        [&](const storage3_entries& entries, size_t) {
            py::object answer =
                entries.back().read_range(decode_text(uuid), static_cast<int>(type), start,
                                          target->size, custom_bytes(custom_data, custom_size));
            py::tuple result = answer.cast<py::tuple>();
            if (result.size() != 2) throw py::type_error("readRange must return (errorCode, data)");
            const OrthancPluginErrorCode code = returned_code(result[0], "readRange");
            if (code != OrthancPluginErrorCode_Success) return code;
            byte_view bytes(result[1]);
            if (bytes.size() != target->size)
                throw py::value_error("readRange returned " + std::to_string(bytes.size()) +
                                      " bytes instead of " + std::to_string(target->size));
            if (bytes.size() > 0) std::memcpy(target->data, bytes.data(), bytes.size());
            return OrthancPluginErrorCode_Success;
        });
}

OrthancPluginErrorCode storage_remove3(const char* uuid, OrthancPluginContentType type,
                                       const void* custom_data, uint32_t custom_size) {
    return dispatch(g_storage3, "the storage area remove callback",
                    [&](const storage3_entries& entries, size_t) {
                        return returned_code(
                            entries.back().remove(decode_text(uuid), static_cast<int>(type),
                                                  custom_bytes(custom_data, custom_size)),
                            "remove");
                    });
}

#endif

}  // namespace

void bind_register_storage_area(py::module_& m, const binding_text<3, 1>& text) {
    text.def(m, [name = text.name](py::function create, py::function read, py::function remove,
                                   py::object read_range) {
        if (!read_range.is_none() && !PyCallable_Check(read_range.ptr()))
            throw py::type_error("readRange must be callable or None");
        add_registration(g_storage, name, {create, read, remove, read_range}, [] {
            OrthancPluginRegisterStorageArea2(context(), storage_create, storage_read_whole,
                                              storage_read_range, storage_remove);
        });
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 8)

void bind_register_storage_area3(py::module_& m, const binding_text<3>& text) {
    text.def(m,
             [name = text.name](py::function create, py::function read_range, py::function remove) {
                 add_registration(g_storage3, name, {create, read_range, remove}, [] {
                     OrthancPluginRegisterStorageArea3(context(), storage_create3,
                                                       storage_read_range3, storage_remove3);
                 });
             });
}

void bind_adopt_dicom_instance(py::module_& m, const binding_text<2>& text) {
    text.def(m, [](py::object dicom, py::object custom_data) {
        byte_view file(dicom);
        byte_view custom(custom_data);
        memory_buffer instance_id;
        memory_buffer attachment_uuid;
        OrthancPluginStoreStatus status = OrthancPluginStoreStatus_Failure;
        check_sdk(without_gil([&] {
            return OrthancPluginAdoptDicomInstance(context(), instance_id.get(),
                                                   attachment_uuid.get(), &status, file.data(),
                                                   file.size(), custom.data(), custom.size32());
        }));
        return py::make_tuple(py::str(instance_id.data(), instance_id.size()),
                              py::str(attachment_uuid.data(), attachment_uuid.size()),
                              static_cast<int>(status));
    });
}

#endif

}  // namespace opm
