// The storage commitment SCP: RegisterStorageCommitmentScpCallback (AE titles) and,
// from SDK 1.12.10, RegisterStorageCommitmentScpCallback2 (the DICOM connection).
// A request's handler is created in one interpreter, where its lookups run.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <memory>

namespace opm {

namespace {

/// What RegisterStorageCommitmentScpCallback(2) got.
struct commitment_callbacks {
    py::object factory, lookup;
};
using commitment_entries = std::vector<commitment_callbacks>;

const family<OrthancPluginErrorCode, commitment_callbacks> g_commitment{
    "the storage commitment factory", OrthancPluginErrorCode_Plugin};
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)
const family<OrthancPluginErrorCode, commitment_callbacks> g_commitment2{
    "the storage commitment factory", OrthancPluginErrorCode_Plugin};
#endif

/// A storage commitment request in progress, pinned to the interpreter whose
/// factory created its Python handler.
struct commitment_handler {
    size_t index;
    py::object lookup;
    py::object data;  ///< what the factory returned
};

py::list string_list(const char* const* values, uint32_t count) {
    py::list result;
    for (uint32_t i = 0; i < count; ++i) result.append(decode_text(values[i]));
    return result;
}

/// Runs the factory of family `f` through `call(factory, jobId, transactionUid,
/// sopClassUids, sopInstanceUids)`, which adds what the form passes, and keeps
/// the handler pinned to the factory's interpreter.
template <typename Call>
OrthancPluginErrorCode create_handler(const family<OrthancPluginErrorCode, commitment_callbacks>& f,
                                      void** handler, const char* job_id,
                                      const char* transaction_uid,
                                      const char* const* sop_class_uids,
                                      const char* const* sop_instance_uids, uint32_t count,
                                      Call&& call) {
    return dispatch(f, [&](const commitment_entries& entries, size_t index) {
        const commitment_callbacks& callbacks = entries.back();
        py::object data =
            call(callbacks.factory, decode_text(job_id), decode_text(transaction_uid),
                 string_list(sop_class_uids, count), string_list(sop_instance_uids, count));
        *handler = new commitment_handler{index, callbacks.lookup, data};
        return OrthancPluginErrorCode_Success;
    });
}

OrthancPluginErrorCode on_commitment_factory(void** handler, const char* job_id,
                                             const char* transaction_uid,
                                             const char* const* sop_class_uids,
                                             const char* const* sop_instance_uids, uint32_t count,
                                             const char* remote_aet, const char* called_aet) {
    return create_handler(g_commitment, handler, job_id, transaction_uid, sop_class_uids,
                          sop_instance_uids, count, [&](const py::object& factory, auto... args) {
                              return factory(args..., decode_text(remote_aet),
                                             decode_text(called_aet));
                          });
}

void on_commitment_destructor(void* raw) {
    std::unique_ptr<commitment_handler> handler(static_cast<commitment_handler*>(raw));
    drop_in(handler->index, "the storage commitment destructor", handler->lookup, handler->data);
}

OrthancPluginErrorCode on_commitment_lookup(OrthancPluginStorageCommitmentFailureReason* target,
                                            void* raw, const char* sop_class_uid,
                                            const char* sop_instance_uid) {
    auto* handler = static_cast<commitment_handler*>(raw);
    return call_in(handler->index, "the storage commitment lookup", OrthancPluginErrorCode_Plugin,
                   [&] {
                       const int reason = handler
                                              ->lookup(decode_text(sop_class_uid),
                                                       decode_text(sop_instance_uid), handler->data)
                                              .cast<int>();
                       *target = static_cast<OrthancPluginStorageCommitmentFailureReason>(reason);
                       return OrthancPluginErrorCode_Success;
                   });
}

/// Defines text.name(factory, lookup), which adds a storage commitment SCP to
/// family `f`; its first registration runs `register_with_orthanc`.
void def_commitment_scp(py::module_& m, const binding_text<2>& text,
                        const family<OrthancPluginErrorCode, commitment_callbacks>& f,
                        void (*register_with_orthanc)()) {
    text.def(m, [&f, name = text.name, register_with_orthanc](py::function factory,
                                                              py::function lookup) {
        add_registration(f, name, {factory, lookup}, register_with_orthanc);
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

OrthancPluginErrorCode on_commitment_factory2(void** handler, const char* job_id,
                                              const char* transaction_uid,
                                              const char* const* sop_class_uids,
                                              const char* const* sop_instance_uids, uint32_t count,
                                              const OrthancPluginDicomConnection* connection) {
    return create_handler(g_commitment2, handler, job_id, transaction_uid, sop_class_uids,
                          sop_instance_uids, count, [&](const py::object& factory, auto... args) {
                              borrowed<OrthancPluginDicomConnection> py_connection(connection);
                              return factory(args..., py_connection.object());
                          });
}

#endif

}  // namespace

void bind_register_storage_commitment_scp_callback(py::module_& m, const binding_text<2>& text) {
    def_commitment_scp(m, text, g_commitment, [] {
        check_sdk(OrthancPluginRegisterStorageCommitmentScpCallback(
            context(), on_commitment_factory, on_commitment_destructor, on_commitment_lookup));
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void bind_register_storage_commitment_scp_callback2(py::module_& m, const binding_text<2>& text) {
    def_commitment_scp(m, text, g_commitment2, [] {
        check_sdk(OrthancPluginRegisterStorageCommitmentScpCallback2(
            context(), on_commitment_factory2, on_commitment_destructor, on_commitment_lookup));
    });
}

#endif

}  // namespace opm
