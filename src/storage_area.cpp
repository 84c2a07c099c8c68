// RegisterStorageArea: the files of Orthanc in Python callbacks, called in
// parallel in the interpreters that registered them.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <cstring>

namespace opm {

namespace {

/// One entry per interpreter: (create, read, remove, readRange or None).
callback_list g_storage;

py::object callbacks_of(size_t index) { return g_storage.of(index).back(); }

/// Copies a bytes-like answer into a buffer Orthanc frees.
void fill(OrthancPluginMemoryBuffer64* target, const py::object& answer, const char* what) {
    byte_view bytes(answer);
    if (OrthancPluginCreateMemoryBuffer64(context(), target, bytes.size()) !=
        OrthancPluginErrorCode_Success)
        throw std::runtime_error(std::string("cannot allocate the answer of ") + what);
    if (bytes.size() > 0) std::memcpy(target->data, bytes.data(), bytes.size());
}

OrthancPluginErrorCode storage_create(const char* uuid, const void* content, int64_t size,
                                      OrthancPluginContentType type) {
    const size_t index = g_storage.pick();
    return call_in(index, "the storage area create callback", OrthancPluginErrorCode_Plugin, [&] {
        callbacks_of(index)[py::int_(0)](decode_text(uuid), static_cast<int>(type),
                                         py::bytes(static_cast<const char*>(content),
                                                   static_cast<size_t>(size)));
        return OrthancPluginErrorCode_Success;
    });
}

OrthancPluginErrorCode storage_read_whole(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                          OrthancPluginContentType type) {
    const size_t index = g_storage.pick();
    return call_in(index, "the storage area read callback", OrthancPluginErrorCode_Plugin, [&] {
        fill(target, callbacks_of(index)[py::int_(1)](decode_text(uuid), static_cast<int>(type)),
             "the storage area read callback");
        return OrthancPluginErrorCode_Success;
    });
}

/// Orthanc allocated `target` with the size of the range. Without a readRange
/// callback, the whole file is read and the range cut out of it.
OrthancPluginErrorCode storage_read_range(OrthancPluginMemoryBuffer64* target, const char* uuid,
                                          OrthancPluginContentType type, uint64_t start) {
    const size_t index = g_storage.pick();
    return call_in(index, "the storage area read-range callback", OrthancPluginErrorCode_Plugin,
                   [&] {
                       py::object callbacks = callbacks_of(index);
                       py::object range = callbacks[py::int_(3)];
                       py::object answer;
                       uint64_t offset = start;
                       if (range.is_none()) {
                           answer = callbacks[py::int_(1)](decode_text(uuid),
                                                           static_cast<int>(type));
                       } else {
                           answer = range(decode_text(uuid), static_cast<int>(type), start,
                                          target->size);
                           offset = 0;
                       }
                       byte_view bytes(answer);
                       if (offset > bytes.size() || bytes.size() - offset < target->size)
                           throw py::value_error("the storage area read a range of " +
                                                 std::to_string(bytes.size()) +
                                                 " bytes, shorter than asked");
                       std::memcpy(target->data, bytes.data() + offset, target->size);
                       return OrthancPluginErrorCode_Success;
                   });
}

OrthancPluginErrorCode storage_remove(const char* uuid, OrthancPluginContentType type) {
    const size_t index = g_storage.pick();
    return call_in(index, "the storage area remove callback", OrthancPluginErrorCode_Plugin, [&] {
        callbacks_of(index)[py::int_(2)](decode_text(uuid), static_cast<int>(type));
        return OrthancPluginErrorCode_Success;
    });
}

}  // namespace

void bind_register_storage_area(py::module_& m) {
    m.def(
        "RegisterStorageArea",
        [](py::function create, py::function read, py::function remove, py::object read_range) {
            if (!read_range.is_none() && !PyCallable_Check(read_range.ptr()))
                throw py::type_error("readRange must be callable or None");
            if (g_storage.add("RegisterStorageArea", py::make_tuple(create, read, remove, read_range)))
                OrthancPluginRegisterStorageArea2(context(), storage_create, storage_read_whole,
                                                  storage_read_range, storage_remove);
        },
        py::arg("create"), py::arg("read"), py::arg("remove"), py::arg("readRange") = py::none(),
        "Registers the storage area: create(uuid, contentType, data), read(uuid, contentType) "
        "-> bytes, remove(uuid, contentType), and optionally readRange(uuid, contentType, "
        "start, size) -> bytes (else ranges are cut out of read()).");
}

}  // namespace opm
