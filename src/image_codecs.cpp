// Python image decoders and transcoders.

#include "callbacks.h"
#include "orthanc_handwritten.h"

namespace opm {

// The families and trampolines below are named in generator/manifest.toml
// (`registers`): the generated module defines their registration functions.
// Their error: Orthanc decodes or transcodes the file itself.

const family<OrthancPluginErrorCode> g_decoders{"the image decoder callback",
                                                OrthancPluginErrorCode_Plugin};
const family<OrthancPluginErrorCode> g_transcoders{"the transcoder callback",
                                                   OrthancPluginErrorCode_Plugin};

/// The first decoder that returns an Image wins; None from all of them lets
/// Orthanc decode the frame itself.
OrthancPluginErrorCode on_decode_image(OrthancPluginImage** target, const void* dicom,
                                       const uint32_t size, uint32_t frame) {
    return dispatch(g_decoders, [&](const callables& callbacks, size_t) {
        py::bytes data(static_cast<const char*>(dicom), size);
        for (const py::object& callback : callbacks) {
            py::object image = callback(data, frame);
            if (image.is_none()) continue;
            *target = image.cast<handle<OrthancPluginImage>&>().release();  // Orthanc frees it
            return OrthancPluginErrorCode_Success;
        }
        return OrthancPluginErrorCode_Plugin;  // not decoded here
    });
}

/// The first transcoder that returns bytes wins; None from all of them lets
/// Orthanc transcode the file itself.
OrthancPluginErrorCode on_transcode(OrthancPluginMemoryBuffer* transcoded, const void* buffer,
                                    uint64_t size, const char* const* syntaxes, uint32_t count,
                                    uint8_t allow_new_sop_instance_uid) {
    return dispatch(g_transcoders, [&](const callables& callbacks, size_t) {
        py::bytes data(static_cast<const char*>(buffer), size);
        py::list allowed;
        for (uint32_t i = 0; i < count; ++i) allowed.append(decode_text(syntaxes[i]));
        for (const py::object& callback : callbacks) {
            py::object result = callback(data, allowed, allow_new_sop_instance_uid != 0);
            if (result.is_none()) continue;
            fill_buffer(transcoded, result, "the transcoded file");
            return OrthancPluginErrorCode_Success;
        }
        return OrthancPluginErrorCode_Plugin;  // not transcoded here
    });
}

}  // namespace opm
