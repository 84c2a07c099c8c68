// C-MOVE requests: RegisterMoveCallback and RegisterMoveCallback2 (AE titles) and,
// from SDK 1.12.10, RegisterMoveCallback3 (the DICOM connection). A move's driver
// is created in one interpreter, where each later step of that move runs.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <memory>

namespace opm {

namespace {

/// A C-MOVE driver's callables; for RegisterMoveCallback, create is the
/// callback and the others are None.
struct move_callbacks {
    py::object create, get_move_size, apply_move, free_move;
};
using move_entries = std::vector<move_callbacks>;

/// Orthanc accepts one C-MOVE handler: RegisterMoveCallback and
/// RegisterMoveCallback2 share this family; a null driver fails the C-MOVE.
const family<void*, move_callbacks> g_move{"the C-MOVE callback", nullptr};
#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)
/// RegisterMoveCallback3: create takes the DicomConnection first.
const family<void*, move_callbacks> g_move3{"the C-MOVE callback", nullptr};
#endif

const char* level_name(OrthancPluginResourceType level) {
    switch (level) {
        case OrthancPluginResourceType_Patient: return "PATIENT";
        case OrthancPluginResourceType_Study: return "STUDY";
        case OrthancPluginResourceType_Series: return "SERIES";
        case OrthancPluginResourceType_Instance: return "INSTANCE";
        default: return "NONE";
    }
}

/// The keyword arguments that every C-MOVE form passes to Python (GIL held).
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
    return dispatch(g_move, [&](const move_entries& entries, size_t index) -> void* {
        py::dict kwargs = move_request(level, patient_id, accession_number, study_uid, series_uid,
                                       sop_uid, target_aet, originator_id);
        kwargs["OriginatorAET"] = decode_text(originator_aet);
        kwargs["SourceAET"] = decode_text(source_aet);
        const move_callbacks& callbacks = entries.back();
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

void register_move() {
    check_sdk(OrthancPluginRegisterMoveCallback(context(), on_move, on_move_size, on_move_apply,
                                                on_move_free));
}

/// Defines text.name(create, getMoveSize, applyMove, freeMove), which adds a C-MOVE
/// driver to family `f`; its first registration runs `register_with_orthanc`.
void def_move_driver(py::module_& m, const binding_text<4>& text,
                     const family<void*, move_callbacks>& f, void (*register_with_orthanc)()) {
    text.def(m, [&f, name = text.name, register_with_orthanc](
                    py::function create, py::function get_move_size, py::function apply_move,
                    py::function free_move) {
        add_registration(f, name, {create, get_move_size, apply_move, free_move},
                         register_with_orthanc);
    });
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void* on_move3(OrthancPluginResourceType level, const char* patient_id,
               const char* accession_number, const char* study_uid, const char* series_uid,
               const char* sop_uid, const OrthancPluginDicomConnection* connection,
               const char* target_aet, uint16_t originator_id) {
    return dispatch(g_move3, [&](const move_entries& entries, size_t index) -> void* {
        py::dict kwargs = move_request(level, patient_id, accession_number, study_uid, series_uid,
                                       sop_uid, target_aet, originator_id);
        borrowed<OrthancPluginDicomConnection> py_connection(connection);
        const move_callbacks& callbacks = entries.back();
        py::object driver = callbacks.create(py_connection.object(), **kwargs);
        return new move_driver{index, callbacks, driver};
    });
}

#endif

}  // namespace

void bind_register_move_callback(py::module_& m, const binding_text<1>& text) {
    text.def(m, [name = text.name](py::function callback) {
        add_registration(g_move, name, {callback, py::none(), py::none(), py::none()},
                         register_move);
    });
}

void bind_register_move_callback2(py::module_& m, const binding_text<4>& text) {
    def_move_driver(m, text, g_move, register_move);
}

#if ORTHANC_PLUGINS_VERSION_IS_ABOVE(1, 12, 10)

void bind_register_move_callback3(py::module_& m, const binding_text<4>& text) {
    def_move_driver(m, text, g_move3, [] {
        check_sdk(OrthancPluginRegisterMoveCallback2(context(), on_move3, on_move_size,
                                                     on_move_apply, on_move_free));
    });
}

#endif

}  // namespace opm
