// Hand-written SDK bindings whose C signatures the generator's rules do not
// cover (declared in generator/manifest.toml).

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace opm {

namespace {

/// Defines a method that returns a copy of memory an SDK object owns:
/// `locate(object)` gives (data, size) and runs without the GIL; `failure` is
/// raised when there is no memory.
template <typename T, typename Locate>
void def_owned_bytes(py::class_<handle<T>>& cls, const binding_text<0>& text, const char* failure,
                     Locate locate) {
    text.def(cls, leased<T>([failure, locate](T* object) {
                 const auto [data, size] = without_gil([&] { return locate(object); });
                 if (size < 0 || (data == nullptr && size > 0))
                     raise_orthanc_exception(OrthancPluginErrorCode_InternalError, failure);
                 return py::bytes(static_cast<const char*>(data), static_cast<size_t>(size));
             }));
}

}  // namespace

void bind_image_get_image_buffer(py::class_<handle<OrthancPluginImage>>& cls,
                                 const binding_text<0>& text) {
    def_owned_bytes(cls, text, "the image has no buffer", [](OrthancPluginImage* image) {
        const int64_t size = static_cast<int64_t>(OrthancPluginGetImagePitch(context(), image)) *
                             OrthancPluginGetImageHeight(context(), image);
        return std::make_pair(OrthancPluginGetImageBuffer(context(), image), size);
    });
}

void bind_create_image_from_buffer(py::module_& m, const binding_text<5>& text) {
    text.def(
        m, [](int format, uint32_t width, uint32_t height, uint32_t pitch, py::object buffer_arg) {
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
        });
}

void bind_dicom_instance_get_instance_data(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                           const binding_text<0>& text) {
    def_owned_bytes(
        cls, text, "the instance has no data", [](OrthancPluginDicomInstance* instance) {
            const void* data = OrthancPluginGetInstanceData(context(), instance);
            // No data is an error, even for an empty instance: size -1.
            return std::make_pair(data, data != nullptr
                                            ? OrthancPluginGetInstanceSize(context(), instance)
                                            : int64_t{-1});
        });
}

void bind_lookup_dictionary(py::module_& m, const binding_text<1>& text) {
    text.def(m, [](const std::string& name) {
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
    });
}

namespace {

/// FindQuery.GetFindQueryTagGroup(index) (`element` false) or
/// GetFindQueryTagElement(index) (`element` true).
auto find_query_tag(bool element) {
    return leased<OrthancPluginFindQuery, uint32_t>(
        [element](OrthancPluginFindQuery* query, uint32_t index) {
            uint16_t tag[2] = {0, 0};  // group, element
            check_sdk(without_gil([&] {
                return OrthancPluginGetFindQueryTag(context(), &tag[0], &tag[1], query, index);
            }));
            return tag[element ? 1 : 0];
        });
}

}  // namespace

void bind_find_query_tag(py::class_<handle<OrthancPluginFindQuery>>& cls,
                         const binding_text<1>& text) {
    text.def(cls, find_query_tag(false));
}

void bind_find_query_tag_element(py::class_<handle<OrthancPluginFindQuery>>& cls,
                                 const binding_text<1>& text) {
    text.def(cls, find_query_tag(true));
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

/// DicomInstance.GetInstanceDicomWebJson / Xml.
auto dicomweb_method(bool xml) {
    return leased<OrthancPluginDicomInstance>(
        [xml](OrthancPluginDicomInstance* instance) { return instance_dicomweb(instance, xml); });
}

}  // namespace

void bind_encode_dicomweb_json(py::module_& m, const binding_text<1>& text) {
    text.def(m, [](py::object dicom) { return encode_dicomweb(dicom, false); });
}

void bind_encode_dicomweb_xml(py::module_& m, const binding_text<1>& text) {
    text.def(m, [](py::object dicom) { return encode_dicomweb(dicom, true); });
}

void bind_dicom_instance_dicomweb_json(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                       const binding_text<0>& text) {
    text.def(cls, dicomweb_method(false));
}

void bind_dicom_instance_dicomweb_xml(py::class_<handle<OrthancPluginDicomInstance>>& cls,
                                      const binding_text<0>& text) {
    text.def(cls, dicomweb_method(true));
}

}  // namespace opm
