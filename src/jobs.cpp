// Python-defined jobs: orthanc.CreateJob(job, jobType) over the SDK's job callbacks.

#include "callbacks.h"
#include "orthanc_handwritten.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace opm {

namespace {

/// A Python object run as an Orthanc job, pinned to the interpreter that
/// created it. Orthanc calls the callbacks of one job from one thread, in
/// mutual exclusion (OrthancCPlugin.h), so the text buffers need no lock.
struct python_job {
    size_t index;
    py::object object;       ///< belongs to interpreter `index`
    std::string content;     ///< returned by GetContent, valid until the next call
    std::string serialized;  ///< returned by GetSerialized, likewise
};

python_job* job_of(void* raw) {
    return static_cast<python_job*>(raw);
}

/// Calls job.<name>(args...) if the object has that method; None otherwise.
template <typename... Args>
py::object call_optional(const py::object& object, const char* name, Args&&... args) {
    if (!py::hasattr(object, name)) return py::none();
    return object.attr(name)(std::forward<Args>(args)...);
}

std::string as_json_text(const py::object& value) {
    if (py::isinstance<py::str>(value)) return value.cast<std::string>();
    return py::module_::import("json").attr("dumps")(value).cast<std::string>();
}

void job_finalize(void* raw) {
    std::unique_ptr<python_job> job(job_of(raw));
    drop_in(job->index, "the job finalizer", job->object);
}

float job_progress(void* raw) {
    python_job* job = job_of(raw);
    return call_in(job->index, "the job's GetProgress", 0.0f, [&] {
        py::object progress = call_optional(job->object, "GetProgress");
        return progress.is_none() ? 0.0f : progress.cast<float>();
    });
}

const char* job_content(void* raw) {
    python_job* job = job_of(raw);
    job->content = call_in(job->index, "the job's GetContent", std::string("{}"), [&] {
        py::object content = call_optional(job->object, "GetContent");
        return content.is_none() ? std::string("{}") : as_json_text(content);
    });
    return job->content.c_str();
}

/// NULL: the job cannot be serialized (no GetSerialized, or it returned None).
const char* job_serialized(void* raw) {
    python_job* job = job_of(raw);
    const bool serializable = call_in(job->index, "the job's GetSerialized", false, [&] {
        py::object serialized = call_optional(job->object, "GetSerialized");
        if (serialized.is_none()) return false;
        job->serialized = as_json_text(serialized);
        return true;
    });
    return serializable ? job->serialized.c_str() : nullptr;
}

OrthancPluginJobStepStatus job_step(void* raw) {
    python_job* job = job_of(raw);
    return call_in(job->index, "the job's Step", OrthancPluginJobStepStatus_Failure, [&] {
        const int status = job->object.attr("Step")().cast<int>();
        if (status != OrthancPluginJobStepStatus_Success &&
            status != OrthancPluginJobStepStatus_Failure &&
            status != OrthancPluginJobStepStatus_Continue)
            throw py::value_error("Step() must return a JobStepStatus, not " +
                                  std::to_string(status));
        return static_cast<OrthancPluginJobStepStatus>(status);
    });
}

OrthancPluginErrorCode job_stop(void* raw, OrthancPluginJobStopReason reason) {
    python_job* job = job_of(raw);
    return call_in(job->index, "the job's Stop", OrthancPluginErrorCode_Plugin, [&] {
        call_optional(job->object, "Stop", static_cast<int>(reason));
        return OrthancPluginErrorCode_Success;
    });
}

OrthancPluginErrorCode job_reset(void* raw) {
    python_job* job = job_of(raw);
    return call_in(job->index, "the job's Reset", OrthancPluginErrorCode_Plugin, [&] {
        call_optional(job->object, "Reset");
        return OrthancPluginErrorCode_Success;
    });
}

}  // namespace

// RegisterJobsUnserializer's family and trampoline, named in
// generator/manifest.toml (`registers`): the generated module defines it. The
// first interpreter that registered one restores every job; that job stays there.
const family<OrthancPluginJob*> g_unserializers{"the jobs unserializer", nullptr,
                                                dispatch_policy::first_registered};

/// A job of a previous run, saved by Orthanc: the first unserializer that
/// returns a Job (from CreateJob) restores it.
OrthancPluginJob* on_unserialize(const char* job_type, const char* serialized) {
    return dispatch(g_unserializers, [&](const callables& callbacks, size_t) -> OrthancPluginJob* {
        for (const py::object& callback : callbacks) {
            py::object job = callback(decode_text(job_type), decode_text(serialized));
            if (!job.is_none()) return job.cast<handle<OrthancPluginJob>&>().release();
        }
        return nullptr;
    });
}

void bind_create_job(py::module_& m, const binding_text<2>& text) {
    text.def(m, [](py::object object, const std::string& job_type) {
        if (!py::hasattr(object, "Step"))
            throw py::type_error("a job needs a Step() method returning a JobStepStatus");
        auto job = std::make_unique<python_job>();
        job->index = state().pool.current_index();
        job->object = std::move(object);
        // Not CreateJob2: with it, Orthanc 1.13.0 did not restore the saved jobs
        // after a restart (measured); CreateJob, deprecated, still does.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        OrthancPluginJob* handle = OrthancPluginCreateJob(
            context(), job.get(), job_finalize, job_type.c_str(), job_progress, job_content,
            job_serialized, job_step, job_stop, job_reset);
#pragma GCC diagnostic pop
        if (handle == nullptr) {
            job->object = py::object();
            raise_orthanc_exception(OrthancPluginErrorCode_InternalError, "Orthanc created no job");
        }
        job.release();  // owned by the Orthanc job now: job_finalize deletes it
        return new_owned(handle, "OrthancPluginCreateJob");
    });
}

void bind_job_submit_job(py::class_<handle<OrthancPluginJob>>& cls, const binding_text<1>& text) {
    text.def(cls, [](handle<OrthancPluginJob>& self, int priority) {
        // Orthanc owns a submitted job: this object no longer frees it.
        OrthancPluginJob* job = self.release();
        return required_text(
            without_gil([&] { return OrthancPluginSubmitJob(context(), job, priority); }),
            OrthancPluginErrorCode_InternalError, "OrthancPluginSubmitJob returned no job ID");
    });
}

}  // namespace opm
