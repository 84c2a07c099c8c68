// DICOM SCP callbacks: C-FIND, worklists, C-MOVE and storage commitment, in their
// first form (AE titles) and, from SDK 1.12.10, with the DICOM connection.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <memory>

namespace opm {

// The C-FIND and worklist callback lists and trampolines, here and in the
// 1.12.10 block below, are named in generator/manifest.toml (`registers`): the
// generated module defines their registration functions.

callback_list g_find;
callback_list g_worklist;

namespace {

/// A C-MOVE driver's callables; for RegisterMoveCallback, create is the
/// callback and the others are None.
struct move_callbacks {
    py::object create, get_move_size, apply_move, free_move;
};

callback_list_of<move_callbacks> g_move;

/// A C-FIND or worklist request in one interpreter: the answers and the query
/// are borrowed for the call, and `call_each(callbacks, answers, query)` calls
/// the interpreter's callbacks with them and what else the form passes.
template <typename Answers, typename Query, typename CallEach>
OrthancPluginErrorCode answer_query(callback_list& list, const char* what, Answers* answers,
                                    const Query* query, CallEach call_each) {
    const size_t index = list.pick();
    return call_in(index, what, OrthancPluginErrorCode_Plugin, [&] {
        borrowed<Answers> py_answers(answers);
        borrowed<Query> py_query(query);
        call_each(list.of(index), py_answers.object(), py_query.object());
        return OrthancPluginErrorCode_Success;
    });
}

using callables = std::vector<py::object>;

/// How the first forms pass the AE titles, as the existing plugin does: C-FIND
/// as keyword arguments (issuerAet=, calledAet=), worklists positionally.
enum class aets_as { keywords, positional };

/// call_each of answer_query for the forms with the AE titles.
auto with_aets(const char* issuer_aet, const char* called_aet, aets_as form) {
    return [=](const callables& callbacks, py::handle py_answers, py::handle py_query) {
        py::str issuer = decode_text(issuer_aet);
        py::str called = decode_text(called_aet);
        for (const py::object& callback : callbacks) {
            if (form == aets_as::keywords)
                callback(py_answers, py_query, py::arg("issuerAet") = issuer,
                         py::arg("calledAet") = called);
            else
                callback(py_answers, py_query, issuer, called);
        }
    };
}

}  // namespace

OrthancPluginErrorCode on_find(OrthancPluginFindAnswers* answers,
                               const OrthancPluginFindQuery* query, const char* issuer_aet,
                               const char* called_aet) {
    return answer_query(g_find, "the C-FIND callback", answers, query,
                        with_aets(issuer_aet, called_aet, aets_as::keywords));
}

OrthancPluginErrorCode on_worklist(OrthancPluginWorklistAnswers* answers,
                                   const OrthancPluginWorklistQuery* query, const char* issuer_aet,
                                   const char* called_aet) {
    return answer_query(g_worklist, "the worklist callback", answers, query,
                        with_aets(issuer_aet, called_aet, aets_as::positional));
}

namespace {

const char* level_name(OrthancPluginResourceType level) {
    switch (level) {
        case OrthancPluginResourceType_Patient: return "PATIENT";
        case OrthancPluginResourceType_Study: return "STUDY";
        case OrthancPluginResourceType_Series: return "SERIES";
        case OrthancPluginResourceType_Instance: return "INSTANCE";
        default: return "NONE";
    }
}

/// The keyword arguments that both C-MOVE forms pass to Python (GIL held).
py::dict move_request(OrthancPluginResourceType level, const char* patient_id,
                      const char* accession_number, const char* study_uid, const char* series_uid,
                      const char* sop_uid, const char* target_aet, uint16_t originator_id) {
    py::dict kwargs;
    kwargs["Level"] = level_name(level);
    kwargs["PatientID"] = decode_text(patient_id);
    kwargs["AccessionNumber"] = decode_text(accession_number);
    kwargs["StudyInstanceUID"] = decode_text(study_uid);
    kwargs["SeriesInstanceUID"] = decode_text(series_uid);
    kwargs["SOPInstanceUID"] = decode_text(sop_uid);
    kwargs["TargetAET"] = decode_text(target_aet);
    kwargs["OriginatorID"] = originator_id;
    return kwargs;
}

/// A C-MOVE in progress: the Python driver object and the interpreter that
/// created it, where every later step of this move runs (pinned).
struct move_driver {
    size_t index;
    move_callbacks callbacks;  ///< those of that interpreter
    py::object driver;         ///< what create returned (None for RegisterMoveCallback)
};

void* on_move(OrthancPluginResourceType level, const char* patient_id, const char* accession_number,
              const char* study_uid, const char* series_uid, const char* sop_uid,
              const char* originator_aet, const char* source_aet, const char* target_aet,
              uint16_t originator_id) {
    const size_t index = g_move.pick();
    return call_in(index, "the C-MOVE callback", static_cast<void*>(nullptr), [&]() -> void* {
        py::dict kwargs = move_request(level, patient_id, accession_number, study_uid, series_uid,
                                       sop_uid, target_aet, originator_id);
        kwargs["OriginatorAET"] = decode_text(originator_aet);
        kwargs["SourceAET"] = decode_text(source_aet);
        const move_callbacks& callbacks = g_move.of(index).back();
        py::object driver = callbacks.create(**kwargs);
        return new move_driver{index, callbacks, driver};
    });
}

uint32_t on_move_size(void* raw) {
    auto* move = static_cast<move_driver*>(raw);
    return call_in(move->index, "the C-MOVE getMoveSize callback", uint32_t{0}, [&] {
        const py::object& size = move->callbacks.get_move_size;
        return size.is_none() ? uint32_t{1} : size(move->driver).cast<uint32_t>();
    });
}

OrthancPluginErrorCode on_move_apply(void* raw) {
    auto* move = static_cast<move_driver*>(raw);
    return call_in(move->index, "the C-MOVE applyMove callback", OrthancPluginErrorCode_Plugin,
                   [&] {
                       const py::object& apply = move->callbacks.apply_move;
                       if (!apply.is_none()) apply(move->driver);
                       return OrthancPluginErrorCode_Success;
                   });
}

void on_move_free(void* raw) {
    std::unique_ptr<move_driver> move(static_cast<move_driver*>(raw));
    call_in(move->index, "the C-MOVE freeMove callback", false, [&] {
        const py::object& release = move->callbacks.free_move;
        if (!release.is_none()) release(move->driver);
        return true;
    });
    move_callbacks& callbacks = move->callbacks;
    drop_in(move->index, "the C-MOVE driver", callbacks.create, callbacks.get_move_size,
            callbacks.apply_move, callbacks.free_move, move->driver);
}

/// What RegisterStorageCommitmentScpCallback(2) got.
struct commitment_callbacks {
    py::object factory, lookup;
};

callback_list_of<commitment_callbacks> g_commitment;

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

OrthancPluginErrorCode on_commitment_factory(void** handler, const char* job_id,
                                             const char* transaction_uid,
                                             const char* const* sop_class_uids,
                                             const char* const* sop_instance_uids, uint32_t count,
                                             const char* remote_aet, const char* called_aet) {
    const size_t index = g_commitment.pick();
    return call_in(index, "the storage commitment factory", OrthancPluginErrorCode_Plugin, [&] {
        const commitment_callbacks& callbacks = g_commitment.of(index).back();
        py::object data = callbacks.factory(decode_text(job_id), decode_text(transaction_uid),
                                            string_list(sop_class_uids, count),
                                            string_list(sop_instance_uids, count),
                                            decode_text(remote_aet), decode_text(called_aet));
        *handler = new commitment_handler{index, callbacks.lookup, data};
        return OrthancPluginErrorCode_Success;
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

void register_move() {
    check_sdk(OrthancPluginRegisterMoveCallback(context(), on_move, on_move_size, on_move_apply,
                                                on_move_free));
}

/// Defines text.name(create, getMoveSize, applyMove, freeMove), which adds a C-MOVE
/// driver to `list`; the family's first registration runs `register_with_orthanc`.
void def_move_driver(py::module_& m, const binding_text& text,
                     callback_list_of<move_callbacks>& list, void (*register_with_orthanc)()) {
    m.def(
        text.name,
        [&list, name = text.name, register_with_orthanc](
            py::function create, py::function get_move_size, py::function apply_move,
            py::function free_move) {
            if (list.add(name, {create, get_move_size, apply_move, free_move}))
                register_with_orthanc();
        },
        py::arg("create"), py::arg("getMoveSize"), py::arg("applyMove"), py::arg("freeMove"),
        text.doc);
}

/// Defines text.name(factory, lookup), which adds a storage commitment SCP to
/// `list`; the family's first registration runs `register_with_orthanc`.
void def_commitment_scp(py::module_& m, const binding_text& text,
                        callback_list_of<commitment_callbacks>& list,
                        void (*register_with_orthanc)()) {
    m.def(
        text.name,
        [&list, name = text.name, register_with_orthanc](py::function factory,
                                                         py::function lookup) {
            if (list.add(name, {factory, lookup})) register_with_orthanc();
        },
        py::arg("factory"), py::arg("lookup"), text.doc);
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

// The "...2" SCP callbacks of SDK 1.12.10: Orthanc passes the DICOM connection
// (a DicomConnection, borrowed for the call) instead of the AE titles.

/// call_each of answer_query for the forms with the DICOM connection, which is
/// borrowed for the call too.
auto with_connection(const OrthancPluginDicomConnection* connection) {
    return [connection](const callables& callbacks, py::handle py_answers, py::handle py_query) {
        borrowed<OrthancPluginDicomConnection> py_connection(connection);
        for (const py::object& callback : callbacks)
            callback(py_answers, py_query, py_connection.object());
    };
}

callback_list_of<move_callbacks> g_move3;  ///< create takes the DicomConnection first
callback_list_of<commitment_callbacks> g_commitment2;

void* on_move3(OrthancPluginResourceType level, const char* patient_id,
               const char* accession_number, const char* study_uid, const char* series_uid,
               const char* sop_uid, const OrthancPluginDicomConnection* connection,
               const char* target_aet, uint16_t originator_id) {
    const size_t index = g_move3.pick();
    return call_in(index, "the C-MOVE callback", static_cast<void*>(nullptr), [&]() -> void* {
        py::dict kwargs = move_request(level, patient_id, accession_number, study_uid, series_uid,
                                       sop_uid, target_aet, originator_id);
        borrowed<OrthancPluginDicomConnection> py_connection(connection);
        const move_callbacks& callbacks = g_move3.of(index).back();
        py::object driver = callbacks.create(py_connection.object(), **kwargs);
        return new move_driver{index, callbacks, driver};
    });
}

OrthancPluginErrorCode on_commitment_factory2(void** handler, const char* job_id,
                                              const char* transaction_uid,
                                              const char* const* sop_class_uids,
                                              const char* const* sop_instance_uids, uint32_t count,
                                              const OrthancPluginDicomConnection* connection) {
    const size_t index = g_commitment2.pick();
    return call_in(index, "the storage commitment factory", OrthancPluginErrorCode_Plugin, [&] {
        borrowed<OrthancPluginDicomConnection> py_connection(connection);
        const commitment_callbacks& callbacks = g_commitment2.of(index).back();
        py::object data = callbacks.factory(
            decode_text(job_id), decode_text(transaction_uid), string_list(sop_class_uids, count),
            string_list(sop_instance_uids, count), py_connection.object());
        *handler = new commitment_handler{index, callbacks.lookup, data};
        return OrthancPluginErrorCode_Success;
    });
}

#endif

}  // namespace

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

// C-FIND and worklists with the DICOM connection.
callback_list g_find2;
callback_list g_worklist2;

OrthancPluginErrorCode on_find2(OrthancPluginFindAnswers* answers,
                                const OrthancPluginFindQuery* query,
                                const OrthancPluginDicomConnection* connection) {
    return answer_query(g_find2, "the C-FIND callback", answers, query,
                        with_connection(connection));
}

OrthancPluginErrorCode on_worklist2(OrthancPluginWorklistAnswers* answers,
                                    const OrthancPluginWorklistQuery* query,
                                    const OrthancPluginDicomConnection* connection) {
    return answer_query(g_worklist2, "the worklist callback", answers, query,
                        with_connection(connection));
}

#endif

void bind_register_move_callback(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [name = text.name](py::function callback) {
            if (g_move.add(name, {callback, py::none(), py::none(), py::none()})) register_move();
        },
        py::arg("callback"), text.doc);
}

void bind_register_move_callback2(py::module_& m, const binding_text& text) {
    def_move_driver(m, text, g_move, register_move);
}

void bind_register_storage_commitment_scp_callback(py::module_& m, const binding_text& text) {
    def_commitment_scp(m, text, g_commitment, [] {
        check_sdk(OrthancPluginRegisterStorageCommitmentScpCallback(
            context(), on_commitment_factory, on_commitment_destructor, on_commitment_lookup));
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void bind_register_move_callback3(py::module_& m, const binding_text& text) {
    def_move_driver(m, text, g_move3, [] {
        check_sdk(OrthancPluginRegisterMoveCallback2(context(), on_move3, on_move_size,
                                                     on_move_apply, on_move_free));
    });
}

void bind_register_storage_commitment_scp_callback2(py::module_& m, const binding_text& text) {
    def_commitment_scp(m, text, g_commitment2, [] {
        check_sdk(OrthancPluginRegisterStorageCommitmentScpCallback2(
            context(), on_commitment_factory2, on_commitment_destructor, on_commitment_lookup));
    });
}

#endif

}  // namespace opm
