// Hand-written SDK bindings whose C signatures the generator's rules do not
// cover (declared in generator/manifest.toml).

#include "interpreter_pool.h"
#include "orthanc_handwritten.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace opm {

namespace {

/// bytes copied from memory that an SDK object owns; raises when there is none.
py::bytes sdk_bytes(const void* data, int64_t size, const char* failure) {
    if (size < 0 || (data == nullptr && size > 0))
        raise_orthanc_exception(OrthancPluginErrorCode_InternalError, failure);
    return py::bytes(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

void bind_image_get_image_buffer(py::class_<handle<OrthancPluginImage>>& cls,
                                 const binding_text& text) {
    cls.def(text.name, leased<OrthancPluginImage>([](OrthancPluginImage* image) {
                const auto [pixels, size] = without_gil([&] {
                    return std::make_pair(
                        OrthancPluginGetImageBuffer(context(), image),
                        static_cast<int64_t>(OrthancPluginGetImagePitch(context(), image)) *
                            OrthancPluginGetImageHeight(context(), image));
                });
                return sdk_bytes(pixels, size, "the image has no buffer");
            }),
            text.doc);
}

void bind_create_image_from_buffer(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](int format, uint32_t width, uint32_t height, uint32_t pitch, py::object buffer_arg) {
            byte_view buffer(buffer_arg);
            check_image_buffer(buffer, pitch, height);
            OrthancPluginImage* image = without_gil([&] {
                return OrthancPluginCreateImage(
                    context(), static_cast<OrthancPluginPixelFormat>(format), width, height);
            });
            py::object result = new_owned(image, "OrthancPluginCreateImage");
            const uint32_t target_pitch = OrthancPluginGetImagePitch(context(), image);
            char* target = static_cast<char*>(OrthancPluginGetImageBuffer(context(), image));
            const size_t row = std::min(target_pitch, pitch);
            for (uint32_t y = 0; y < height; ++y)
                std::memcpy(target + static_cast<size_t>(y) * target_pitch,
                            buffer.data() + static_cast<size_t>(y) * pitch, row);
            return result;
        },
        py::arg("format"), py::arg("width"), py::arg("height"), py::arg("pitch"), py::arg("buffer"),
        text.doc);
}

void bind_dicom_instance_get_instance_data(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                           const binding_text& text) {
    cls.def(text.name, leased<OrthancPluginDicomInstance>([](OrthancPluginDicomInstance* instance) {
                const auto [data, size] = without_gil([&] {
                    return std::make_pair(OrthancPluginGetInstanceData(context(), instance),
                                          OrthancPluginGetInstanceSize(context(), instance));
                });
                return sdk_bytes(data, size, "the instance has no data");
            }),
            text.doc);
}

void bind_lookup_dictionary(py::module_& m, const binding_text& text) {
    m.def(
        text.name,
        [](const std::string& name) {
            OrthancPluginDictionaryEntry entry{};
            check_sdk(without_gil(
                [&] { return OrthancPluginLookupDictionary(context(), &entry, name.c_str()); }));
            py::dict result;
            result["Group"] = entry.group;
            result["Element"] = entry.element;
            result["ValueRepresentation"] = static_cast<int>(entry.vr);
            result["MinMultiplicity"] = entry.minMultiplicity;
            result["MaxMultiplicity"] = entry.maxMultiplicity;
            return result;
        },
        py::arg("name"), text.doc);
}

namespace {

std::pair<uint16_t, uint16_t> find_query_tag(OrthancPluginFindQuery* query, uint32_t index) {
    uint16_t group = 0;
    uint16_t element = 0;
    check_sdk(without_gil(
        [&] { return OrthancPluginGetFindQueryTag(context(), &group, &element, query, index); }));
    return std::make_pair(group, element);
}

}  // namespace

void bind_find_query_tag(py::class_<handle<OrthancPluginFindQuery>>& cls,
                         const binding_text& text) {
    cls.def(
        text.name,
        leased<OrthancPluginFindQuery, uint32_t>([](OrthancPluginFindQuery* query, uint32_t index) {
            return find_query_tag(query, index).first;
        }),
        py::arg("index"), text.doc);
}

void bind_find_query_tag_element(py::class_<handle<OrthancPluginFindQuery>>& cls,
                                 const binding_text& text) {
    cls.def(
        text.name,
        leased<OrthancPluginFindQuery, uint32_t>([](OrthancPluginFindQuery* query, uint32_t index) {
            return find_query_tag(query, index).second;
        }),
        py::arg("index"), text.doc);
}

namespace {

/// Binary values (OB, OW, UN...) are written inline (the default of a NULL
/// callback), so the Python API needs no binary callback.
py::object encode_dicomweb(py::object dicom_arg, bool xml) {
    byte_view dicom(dicom_arg);
    const uint32_t size = dicom.size32();
    char* text = without_gil([&] {
        return xml ? OrthancPluginEncodeDicomWebXml2(context(), dicom.data(), size, nullptr,
                                                     nullptr)
                   : OrthancPluginEncodeDicomWebJson2(context(), dicom.data(), size, nullptr,
                                                      nullptr);
    });
    return required_text(text, OrthancPluginErrorCode_BadFileFormat,
                         "cannot encode this DICOM file as DICOMweb");
}

py::object instance_dicomweb(OrthancPluginDicomInstance* instance, bool xml) {
    char* text = without_gil([&] {
        return xml ? OrthancPluginGetInstanceDicomWebXml(context(), instance, nullptr, nullptr)
                   : OrthancPluginGetInstanceDicomWebJson(context(), instance, nullptr, nullptr);
    });
    return required_text(text, OrthancPluginErrorCode_BadFileFormat,
                         "cannot encode this instance as DICOMweb");
}

}  // namespace

void bind_encode_dicomweb_json(py::module_& m, const binding_text& text) {
    m.def(
        text.name, [](py::object dicom) { return encode_dicomweb(dicom, false); }, py::arg("dicom"),
        text.doc);
}

void bind_encode_dicomweb_xml(py::module_& m, const binding_text& text) {
    m.def(
        text.name, [](py::object dicom) { return encode_dicomweb(dicom, true); }, py::arg("dicom"),
        text.doc);
}

void bind_dicom_instance_dicomweb_json(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                       const binding_text& text) {
    cls.def(text.name, leased<OrthancPluginDicomInstance>([](OrthancPluginDicomInstance* instance) {
                return instance_dicomweb(instance, false);
            }),
            text.doc);
}

void bind_dicom_instance_dicomweb_xml(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                      const binding_text& text) {
    cls.def(text.name, leased<OrthancPluginDicomInstance>([](OrthancPluginDicomInstance* instance) {
                return instance_dicomweb(instance, true);
            }),
            text.doc);
}

}  // namespace opm
