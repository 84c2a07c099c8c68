"""Each classification rule of generator/model.py, on a tiny inline header."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from generator.emit_cpp import emit_cpp, emit_function, emit_handwritten_header
from generator.emit_pyi import emit_pyi
from generator.manifest import Handwritten, Manifest, StubAlias, load_manifest
from generator.model import UnsupportedError, model_from_json

from .conftest import BuildModel, ParseHeader

ROOT = Path(__file__).resolve().parents[2]


def test_global_function_with_string_parameter(model: BuildModel) -> None:
    m = model("""
        /** @brief Log a line. */
        static inline void OrthancPluginLogInfo(OrthancPluginContext* context, const char* message) {}
    """)
    (fn,) = m.functions
    assert (fn.py_name, fn.owner, fn.returns) == ("LogInfo", "", "none")
    assert [(p.py_name, p.kind) for p in fn.params] == [("message", "str")]
    assert fn.doc == "Log a line."


def test_opaque_handle_becomes_a_class_with_methods_and_destructor(model: BuildModel) -> None:
    m = model("""
        typedef struct _OrthancPluginImage_t OrthancPluginImage;
        static inline uint32_t OrthancPluginGetImageWidth(OrthancPluginContext* c,
                                                          const OrthancPluginImage* image) { return 0; }
        static inline OrthancPluginImage* OrthancPluginCreateImage(OrthancPluginContext* c,
                                                                   uint32_t width) { return 0; }
        static inline void OrthancPluginFreeImage(OrthancPluginContext* c, OrthancPluginImage* image) {}
    """)
    (cls,) = m.classes
    assert (cls.py_name, cls.destructor) == ("Image", "OrthancPluginFreeImage")
    by_name = {fn.py_name: fn for fn in m.functions}
    assert set(by_name) == {"GetImageWidth", "CreateImage"}  # FreeImage is the destructor
    assert by_name["GetImageWidth"].owner == "Image"
    assert by_name["GetImageWidth"].params == ()
    assert by_name["GetImageWidth"].returns == "int"
    assert (by_name["CreateImage"].returns, by_name["CreateImage"].returns_target) == (
        "object",
        "Image",
    )
    assert m.wrapped_count == m.sdk_functions == 3


def test_enum_constants_use_the_existing_plugins_names(model: BuildModel) -> None:
    m = model("""
        typedef enum {
          OrthancPluginChangeType_StableStudy = 9,
          OrthancPluginChangeType_NewInstance = 10,
          OrthancPluginChangeType_OrthancStarted = 11,
          _OrthancPluginChangeType_INTERNAL = 0x7fffffff
        } OrthancPluginChangeType;
    """)
    change_type = next(e for e in m.enums if e.py_name == "ChangeType")
    assert [(c.py_name, c.value) for c in change_type.constants] == [
        ("STABLE_STUDY", 9),
        ("NEW_INSTANCE", 10),
        ("ORTHANC_STARTED", 11),
    ]


def test_memory_buffer_output_and_error_code(model: BuildModel) -> None:
    m = model("""
        static inline OrthancPluginErrorCode OrthancPluginRestApiGet(
            OrthancPluginContext* c, OrthancPluginMemoryBuffer* target, const char* uri) { return 0; }
    """)
    (fn,) = m.functions
    assert fn.checks_error and fn.outputs == ("bytes",)
    assert [p.py_name for p in fn.params] == ["uri"]
    assert [p.kind for p in fn.params] == ["str"]
    # The emitter, not the model, spells the C arguments.
    assert "OrthancPluginRestApiGet(context(), out0_.get(), uri.c_str())" in emit_function(fn)


def test_owned_and_static_strings(model: BuildModel) -> None:
    m = model("""
        static inline char* OrthancPluginGenerateUuid(OrthancPluginContext* c) { return 0; }
        static inline const char* OrthancPluginGetName2(OrthancPluginContext* c) { return 0; }
    """)
    returns = {fn.py_name: fn.returns for fn in m.functions}
    assert returns == {"GenerateUuid": "str", "GetName2": "static_str"}


def test_pointer_and_size_become_one_buffer(model: BuildModel) -> None:
    m = model("""
        static inline char* OrthancPluginComputeMd5(OrthancPluginContext* c,
                                                    const void* buffer, uint32_t size) { return 0; }
        static inline void OrthancPluginSend(OrthancPluginContext* c, const char* body,
                                             uint32_t bodySize) {}
    """)
    for fn in m.functions:
        (param,) = fn.params
        assert param.kind == "buffer"
        assert len(param.c_names) == 2


def test_count_keys_values_become_a_dict(model: BuildModel) -> None:
    m = model("""
        static inline OrthancPluginErrorCode OrthancPluginGet2(
            OrthancPluginContext* c, OrthancPluginMemoryBuffer* target, const char* uri,
            uint32_t headersCount, const char* const* headersKeys,
            const char* const* headersValues) { return 0; }
    """)
    (fn,) = m.functions
    assert [(p.py_name, p.kind) for p in fn.params] == [("uri", "str"), ("headers", "dict")]


def test_handle_parameters_refuse_none_unless_the_manifest_lists_them(model: BuildModel) -> None:
    m = model(
        """
        typedef struct _OrthancPluginImage_t OrthancPluginImage;
        static inline void OrthancPluginUseImages(OrthancPluginContext* c, int flags,
                                                  const OrthancPluginImage* required,
                                                  const OrthancPluginImage* optional) {}
        """,
        Manifest(nullable_params=frozenset({"OrthancPluginUseImages.optional"})),
    )
    (fn,) = m.functions
    assert [(p.py_name, p.kind) for p in fn.params] == [
        ("flags", "int"),
        ("required", "object"),
        ("optional", "optional_object"),
    ]
    code = emit_cpp(m)
    assert 'py::arg("required").none(false)' in code
    assert 'py::arg("optional").none(true)' in code
    stub = emit_pyi(m)
    assert "required: Image, optional: Image | None" in stub


def test_unknown_parameter_type_fails_loudly(model: BuildModel) -> None:
    header = """
        typedef void (*OrthancPluginCallback)(void);
        static inline void OrthancPluginRegister(OrthancPluginContext* c,
                                                 OrthancPluginCallback callback) {}
    """
    with pytest.raises(UnsupportedError, match="OrthancPluginRegister .*OrthancPluginCallback"):
        model(header)
    m = model(header, Manifest(unsupported={"OrthancPluginRegister": "a C callback"}))
    assert [(u.c_name, u.reason) for u in m.unwrapped] == [
        ("OrthancPluginRegister", "a C callback")
    ]
    assert (m.wrapped_count, m.sdk_functions) == (0, 1)


def test_handwritten_functions_count_as_wrapped(model: BuildModel) -> None:
    manifest = Manifest(
        handwritten=[
            Handwritten(
                "Register",
                "",
                ("OrthancPluginRegister",),
                "bind_register",
                "() -> None",
                'Registers a "callback".',
            )
        ]
    )
    m = model(
        """
        typedef void (*OrthancPluginCallback)(void);
        static inline void OrthancPluginRegister(OrthancPluginContext* c,
                                                 OrthancPluginCallback callback) {}
    """,
        manifest,
    )
    assert m.functions == () and m.unwrapped == ()
    assert (m.wrapped_count, m.sdk_functions) == (1, 1)
    header = emit_handwritten_header(m)
    assert "void bind_register(py::module_& m, const binding_text<0>& text);" in header
    # The binder gets its Python name and docstring from the manifest.
    assert 'bind_register(m_module, {"Register", "Registers a \\"callback\\".", {}, {}});' in (
        emit_cpp(m)
    )
    assert 'def Register() -> None:\n    """Registers a "callback".' in emit_pyi(m)


def test_binder_keyword_names_come_from_the_signature(model: BuildModel) -> None:
    """The binder's text carries the keyword names of the manifest's signature
    (`self` aside, None defaults last), and its declared type their counts: a
    binder written for other counts does not link."""
    signatures = {
        "Open": ("", "(path: str, callback: Callable[[], None] | None = None) -> None"),
        "Read": ("Image", "(self, start: int, size: int) -> bytes"),
    }
    manifest = Manifest(
        [
            Handwritten(name, owner, (), f"bind_{name.lower()}", signature, "")
            for name, (owner, signature) in signatures.items()
        ]
    )
    m = model(
        "typedef struct _OrthancPluginImage_t OrthancPluginImage;\n"
        "static inline void OrthancPluginFreeImage(OrthancPluginContext* c, "
        "OrthancPluginImage* image) {}",
        manifest,
    )
    header = emit_handwritten_header(m)
    assert "void bind_open(py::module_& m, const binding_text<1, 1>& text);" in header
    assert (
        "void bind_read(py::class_<handle<OrthancPluginImage>>& cls, "
        "const binding_text<2>& text);" in header
    )
    cpp = emit_cpp(m)
    assert 'bind_open(m_module, {"Open", "", {"path"}, {"callback"}});' in cpp
    assert 'bind_read(cls_Image, {"Read", "", {"start", "size"}, {}});' in cpp


def _binder_definitions() -> dict[str, list[str]]:
    """Binder -> the binding_text types of its definitions in src/ (one per
    definition: a binder defined twice, under #if, has two)."""
    found: dict[str, list[str]] = {}
    for source in sorted((ROOT / "src").glob("*.cpp")):
        text = source.read_text()
        for binder, parameters in re.findall(r"^void (bind_\w+)\(([^)]*)\)", text, re.M):
            types = re.findall(r"binding_text<[^>]*>", parameters) or ["(no binding_text)"]
            found.setdefault(binder, []).extend(types)
    return found


def test_binders_in_src_take_the_manifests_keywords() -> None:
    """Each binder in src/ is defined for the keyword counts of its manifest entry,
    and no file of src/ names a parameter of a binding: every keyword name comes
    from the manifest. (A drift also fails the build, at link time; this says
    which binder, without building.)"""
    from generator.emit_cpp import text_type

    defined = _binder_definitions()
    binders = [entry for entry in load_manifest().handwritten if entry.binder]
    assert len(binders) >= 30
    for entry in binders:
        assert defined.get(entry.binder) == [text_type(entry)], (
            f"{entry.binder} ({entry.py_name}{entry.signature}) must take "
            f"const {text_type(entry)}&, src/ has {defined.get(entry.binder)}"
        )
    # A keyword name with no value names a parameter (calls to Python pass values).
    for source in sorted((ROOT / "src").glob("*.[ch]*")):
        named = re.findall(r'py::arg\("(\w+)"\)(?!\s*=)', source.read_text())
        assert named == [], f"{source.name} names parameters: {named}"


REGISTER_HEADER = """
    typedef int (*OrthancPluginCallback)(const char* id);
    static inline int OrthancPluginRegister(OrthancPluginContext* c,
                                            OrthancPluginCallback callback) { return 0; }
"""


def test_registers_entry_is_defined_by_the_generated_module(model: BuildModel) -> None:
    entry = Handwritten(
        "Register",
        "",
        ("OrthancPluginRegister",),
        "",
        "(handler: Callable[[str], int]) -> None",
        "Registers handler(id).",
        registers=("g_handlers", "on_handler"),
    )
    m = model(REGISTER_HEADER, Manifest([entry]))
    assert (m.wrapped_count, m.sdk_functions) == (1, 1)
    # No binder to declare: the family file defines the family and the trampoline,
    # declared here with the types that the SDK registration function implies.
    header = emit_handwritten_header(m)
    assert "bind_register" not in header  # no binder to declare
    assert "extern const family_for<decltype(&OrthancPluginRegister)> g_handlers;" in header
    assert "trampoline_of<decltype(&OrthancPluginRegister)> on_handler;" in header
    cpp = emit_cpp(m)
    assert (
        'def_registration(m_module, {"Register", "Registers handler(id).", {"handler"}, {}}, '
        "g_handlers, OrthancPluginRegister, on_handler);" in cpp
    )
    assert "def Register(handler: Callable[[str], int]) -> None:" in emit_pyi(m)


def test_stub_aliases_come_from_the_manifest(model: BuildModel) -> None:
    manifest = Manifest(
        [
            Handwritten(
                "Register",
                "",
                ("OrthancPluginRegister",),
                "bind_register",
                "(callback: IdCallback) -> None",
                "",
            )
        ],
        stub_aliases=(StubAlias("IdCallback", "Callable[[str], int]", "callback(id) -> status"),),
    )
    stub = emit_pyi(model(REGISTER_HEADER, manifest))
    assert "# callback(id) -> status\nIdCallback = Callable[[str], int]\n" in stub
    assert "def Register(callback: IdCallback) -> None:" in stub
    # The prelude defines no alias of its own.
    assert stub.count(" = Callable[") == 1


def test_every_stub_alias_of_the_manifest_is_used() -> None:
    manifest = load_manifest()
    signatures = " ".join(entry.signature for entry in manifest.handwritten)
    unused = [a.name for a in manifest.stub_aliases if not re.search(rf"\b{a.name}\b", signatures)]
    assert manifest.stub_aliases and unused == []


ONE_CALLABLE = "(callback: Callable[[str], int]) -> None"


@pytest.mark.parametrize(
    ("binder", "registers", "signature", "message"),
    [
        ("bind_register", ("g_handlers", "on_handler"), ONE_CALLABLE, "both a binder and"),
        ("", (), ONE_CALLABLE, "needs a binder or `registers`"),
        ("", ("g_handlers",), ONE_CALLABLE, "is \\[list, trampoline\\]"),
        ("", ("g_handlers", "on-handler"), ONE_CALLABLE, "not an identifier"),
        ("", ("g_handlers", "on_handler"), "(a: int, b: int) -> None", "takes one callable"),
        # What a binder's binding_text (src/binding_text.h) can say.
        ("bind_register", (), "(a: int = 1) -> None", "a default can only be None"),
        ("bind_register", (), "(*args: int) -> None", "only plain parameters"),
        ("bind_register", (), "(a: int, *, b: int) -> None", "only plain parameters"),
        ("bind_register", (), "(**kwargs: int) -> None", "only plain parameters"),
    ],
)
def test_manifest_entry_needs_a_binder_or_registers(
    tmp_path: Path, binder: str, registers: tuple[str, ...], signature: str, message: str
) -> None:
    lines = [
        "[[handwritten]]",
        'name = "Register"',
        'covers = ["OrthancPluginRegister"]',
        f'signature = "{signature}"',
    ]
    if binder:
        lines.append(f'binder = "{binder}"')
    if registers:
        lines.append(f"registers = {json.dumps(list(registers))}")
    path = tmp_path / "manifest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_manifest(path)


def test_manifest_citing_a_missing_function_is_an_error(model: BuildModel) -> None:
    with pytest.raises(ValueError, match="OrthancPluginNope"):
        model("", Manifest(unsupported={"OrthancPluginNope": "gone"}))


def _versioned(version: str, body: str = "") -> str:
    major, minor, revision = version.split(".")
    return (
        f"""
        #define ORTHANC_PLUGINS_MINIMAL_MAJOR_NUMBER {major}
        #define ORTHANC_PLUGINS_MINIMAL_MINOR_NUMBER {minor}
        #define ORTHANC_PLUGINS_MINIMAL_REVISION_NUMBER {revision}
    """
        + body
    )


NEW_FUNCTION = """
    typedef void (*OrthancPluginCallback)(void);
    static inline void OrthancPluginRegisterNew(OrthancPluginContext* c,
                                                OrthancPluginCallback callback) {}
"""


def test_manifest_entries_newer_than_the_header_do_not_apply(model: BuildModel) -> None:
    manifest = Manifest(
        unsupported={"OrthancPluginRegisterNew": "later"},
        since_sdk={"OrthancPluginRegisterNew": "1.12.8"},
    )
    old = model(_versioned("1.10.1"), manifest)
    assert (old.sdk_version, old.unwrapped, old.sdk_functions) == ("1.10.1", (), 0)
    new = model(_versioned("1.12.8", NEW_FUNCTION), manifest)
    assert [u.c_name for u in new.unwrapped] == ["OrthancPluginRegisterNew"]
    # A header of that version or newer must have it, and an older one must not.
    with pytest.raises(ValueError, match="lacks them.*OrthancPluginRegisterNew"):
        model(_versioned("1.13.0"), manifest)
    with pytest.raises(ValueError, match="later than the header.*OrthancPluginRegisterNew"):
        model(_versioned("1.12.7", NEW_FUNCTION), manifest)


def test_functions_of_newer_sdks_raise_a_clear_attribute_error(model: BuildModel) -> None:
    manifest = Manifest(since_sdk={"OrthancPluginRegisterNew": "1.12.8"})
    old = model(_versioned("1.10.1"), manifest)
    assert [(n.py_name, n.owner, n.since_sdk) for n in old.newer] == [("RegisterNew", "", "1.12.8")]
    assert (
        'newer_sdk_attributes(m_module, "orthanc", "1.10.1",\n'
        '                         {{"RegisterNew", "1.12.8"}});' in emit_cpp(old)
    )
    # Listed as unsupported, or present in the header: nothing to announce.
    simple = (
        "static inline void OrthancPluginRegisterNew(OrthancPluginContext* c, const char* t) {}"
    )
    assert model(_versioned("1.12.8", simple), manifest).newer == ()
    unsupported = Manifest(
        since_sdk={"OrthancPluginRegisterNew": "1.12.8"},
        unsupported={"OrthancPluginRegisterNew": "later"},
    )
    assert model(_versioned("1.10.1"), unsupported).newer == ()


def test_since_sdk_annotation_is_read(parse: ParseHeader) -> None:
    header = parse(
        """
        #define ORTHANC_PLUGIN_SINCE_SDK(v) __attribute__ ((annotate("ORTHANC_PLUGIN_SINCE_SDK " v)))
        ORTHANC_PLUGIN_SINCE_SDK("1.12.9")
        static inline void OrthancPluginNew(OrthancPluginContext* c) {}
        static inline void OrthancPluginOld(OrthancPluginContext* c) {}
        """
    )
    assert {f.name: f.since_sdk for f in header.functions} == {
        "OrthancPluginNew": "1.12.9",
        "OrthancPluginOld": "",
    }


def test_emit_stages_run_without_libclang(model: BuildModel, tmp_path: Path) -> None:
    saved = tmp_path / "model.json"
    header = "static inline void OrthancPluginLogText(OrthancPluginContext* c, const char* t) {}"
    saved.write_text(json.dumps(model(header).to_json_dict()))
    script = (
        "import sys; sys.modules['clang'] = None\n"  # any import of libclang now fails
        "from generator.__main__ import main\n"
        f"sys.exit(main(['--from-model', {str(saved)!r}, '--out-dir', {str(tmp_path)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "wrapped 1 / 1 SDK functions" in result.stdout
    assert (tmp_path / "orthanc.pyi").is_file()


def test_unknown_declaration_kind_is_an_error(parse: ParseHeader) -> None:
    with pytest.raises(RuntimeError, match="unsupported declaration"):
        parse("int orthanc_global_variable;\n")


def test_emitted_code_releases_the_gil_and_says_it_is_generated(model: BuildModel) -> None:
    m = model("""
        typedef struct _OrthancPluginImage_t OrthancPluginImage;
        static inline uint32_t OrthancPluginGetImageWidth(OrthancPluginContext* c,
                                                          const OrthancPluginImage* image) { return 0; }
        static inline char* OrthancPluginGenerateUuid(OrthancPluginContext* c) { return 0; }
    """)
    cpp = emit_cpp(m)
    assert cpp.startswith("// generated by generator/emit_cpp.py")
    assert "do not edit" in cpp.splitlines()[0]
    assert cpp.count("sdk_call unlocked;") == 2
    pyi = emit_pyi(m)
    assert "class Image:" in pyi
    assert "    def GetImageWidth(self) -> int:" in pyi
    assert "def GenerateUuid() -> str:" in pyi  # NULL raises unless listed as nullable


def test_model_round_trips_through_json(model: BuildModel) -> None:
    m = model("""
        typedef struct _OrthancPluginImage_t OrthancPluginImage;
        static inline OrthancPluginErrorCode OrthancPluginGet(
            OrthancPluginContext* c, OrthancPluginMemoryBuffer* target,
            const OrthancPluginImage* image, const void* data, uint32_t size) { return 0; }
    """)
    assert model_from_json(json.loads(json.dumps(m.to_json_dict()))) == m
