"""The embedding layer (src/interpreter_pool.cpp) on its own, without Orthanc:
tests/embed/driver.cpp runs one scenario per fresh process, as CPython's
_testembed does; a crash or a hang fails the scenario. Its "config" scenario
runs the configuration parsing (src/config.cpp) on a JSON text alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    """A build tool of the test environment (pip's cmake, ninja), else PATH's."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is needed to build tests/embed/driver.cpp"
    return found


@pytest.fixture(scope="session")
def driver() -> Path:
    build = ROOT / "build" / f"embed-{sys.implementation.cache_tag}"
    configure = [
        _tool("cmake"),
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-G",
        "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={_tool('ninja')}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DOPM_EMBED_TESTS=ON",
        f"-DPython3_EXECUTABLE={sys.executable}",
    ]
    for command in (
        configure,
        [_tool("cmake"), "--build", str(build), "--target", "opm_embed_driver"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return build / "opm_embed_driver"


def run(driver: Path, scenario: str) -> str:
    result = subprocess.run([str(driver), scenario], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"{scenario} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def test_start_and_stop_twice_in_one_process(driver: Path) -> None:
    # Orthanc's /tools/reset finalizes and initializes the plugin in the same process.
    assert run(driver, "restart").splitlines() == ["round 0 stopped", "round 1 stopped"]


def test_nested_attach_to_another_interpreter_and_back(driver: Path) -> None:
    assert run(driver, "nested-attach").splitlines() == ["nested attach ok"]


def test_cached_thread_states_are_reaped(driver: Path) -> None:
    # Threads that ended before the stop, and one that outlives it.
    assert run(driver, "reap-thread-states").splitlines() == ["thread states reaped"]


def test_main_interpreter_alone_started_and_stopped_twice(driver: Path) -> None:
    assert run(driver, "restart-main").splitlines() == ["round 0 stopped", "round 1 stopped"]


def test_main_interpreter_alongside_the_sub_interpreters(driver: Path) -> None:
    # PythonMainScript: interpreter N is the main one, beside N sub-interpreters.
    assert run(driver, "main-alongside").splitlines() == ["main interpreter alongside ok"]


def test_fall_back_to_the_main_interpreter(driver: Path) -> None:
    # A sub-interpreter refuses the script: those created so far are discarded.
    assert run(driver, "fall-back").splitlines() == ["fell back to the main interpreter"]


def test_a_failed_start_is_stopped_and_can_start_again(driver: Path) -> None:
    assert run(driver, "prepare-error").splitlines() == ["failed start stopped, started again"]


def test_a_thread_that_ignores_the_stop_leaves_the_runtime_running(driver: Path) -> None:
    # Bounded: finalize() gives up at its deadline instead of hanging, exit 0.
    assert run(driver, "abandon-running-thread").splitlines() == ["left running, bounded"]


def test_64_threads_in_every_interpreter_are_reaped(driver: Path) -> None:
    # As 64 of Orthanc's HTTP threads: half exit before the stop, half after it.
    assert run(driver, "many-threads").splitlines() == ["64 threads x 4 interpreters reaped"]


def test_stop_waits_for_an_sdk_call_in_progress(driver: Path) -> None:
    # Orthanc's /tools/reset while a script thread is inside a call to Orthanc.
    assert run(driver, "stop-during-sdk-call").splitlines() == ["stop waited for the SDK call"]


def test_stop_on_another_thread_is_refused(driver: Path) -> None:
    # Interpreters end on the thread that created them; a wrong call changes nothing.
    assert run(driver, "stop-on-the-wrong-thread").splitlines() == [
        "stop on the wrong thread refused"
    ]


def test_pybind11_class_after_a_reset(driver: Path) -> None:
    # The runtime is finalized with Py_FinalizeEx and started again (/tools/reset);
    # a pybind11 class then works on the thread that did it and on another.
    assert run(driver, "reset-then-pybind11-class").splitlines() == [
        f"pybind11 class with {count} interpreters ok" for count in (2, 1, 2)
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ["nope"],
        ["restart", "extra"],
        ["config"],
        ["config", "{}"],
        ["config", "{}", "many"],
        ["config", "{}", "-1"],
        ["config", "{}", "4", "extra"],
    ],
    ids=" ".join,
)
def test_unknown_scenario_or_bad_arguments_are_refused(driver: Path, arguments: list[str]) -> None:
    result = subprocess.run([str(driver), *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr


# The configuration: parse_config on Orthanc's JSON text, as the plugin reads it.


def parse(
    driver: Path, configuration: object, cwd: Path, cpu_count: int = 4
) -> subprocess.CompletedProcess[str]:
    """The driver's "config" scenario on `configuration` (a str is passed as is)."""
    text = configuration if isinstance(configuration, str) else json.dumps(configuration)
    return subprocess.run(
        [str(driver), "config", text, str(cpu_count)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def fields(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The parsed configuration, field by field (other_python_plugins: its count)."""
    assert result.returncode == 0, f"exited with {result.returncode}: {result.stderr}"
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def other_python_plugins(result: subprocess.CompletedProcess[str]) -> list[str]:
    parsed = fields(result)
    count = int(parsed["other_python_plugins"])
    return [parsed[f"other_python_plugins[{i}]"] for i in range(count)]


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The message of the config_error the configuration was refused with."""
    assert result.returncode == 3, (
        f"exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    assert result.stdout == ""
    prefix = "config_error: "
    assert result.stderr.startswith(prefix), result.stderr
    return result.stderr[len(prefix) :].removesuffix("\n")


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """The driver's working directory, as getcwd() spells it (relative paths resolve here)."""
    return tmp_path.resolve()


def under(cwd: Path, relative: str) -> str:
    return os.path.abspath(os.path.join(cwd, relative))


def test_config_without_python_options_leaves_the_plugin_inactive(driver: Path, cwd: Path) -> None:
    assert fields(parse(driver, {"Name": "Orthanc", "HttpPort": 8042}, cwd)) == {
        "script": "",
        "main_script": "",
        "verbose": "false",
        "interpreters": "1",
        "virtual_env": "",
        "home": "",
        "other_python_plugins": "0",
    }


def test_config_with_comments_as_orthanc_writes_them(driver: Path, cwd: Path) -> None:
    # Orthanc's own configuration files hold /* */ and // comments.
    text = """{
      /* The Python plugin */
      "PythonScript" : "/srv/plugin.py",  // the script
      "PythonInterpreters" : 2
    }"""
    parsed = fields(parse(driver, text, cwd))
    assert (parsed["script"], parsed["interpreters"]) == ("/srv/plugin.py", "2")


def test_config_refusal_quotes_the_value_without_its_comments(driver: Path, cwd: Path) -> None:
    text = """{
      "PythonInterpreters" : /* how many */ 0  // one per core
    }"""
    assert refusal(parse(driver, text, cwd)) == (
        'PythonInterpreters must be an integer from 1 to 1024 or "auto", not 0'
    )


# (flat option, its key in the "Python" section, a value, the field, what the field holds;
# a relative path is given relative to the driver's working directory).
OPTIONS = [
    ("PythonScript", "Path", "plugin.py", "script", "plugin.py"),
    ("PythonMainScript", "MainScript", "main.py", "main_script", "main.py"),
    ("PythonVerbose", "Verbose", True, "verbose", "true"),
    ("PythonInterpreters", "Interpreters", 3, "interpreters", "3"),
    ("PythonVirtualEnv", "VirtualEnv", "venv", "virtual_env", "venv"),
    ("PythonHome", "Home", "/opt/python", "home", "/opt/python"),
]
PATH_FIELDS = {"script", "main_script", "virtual_env", "home"}


@pytest.mark.parametrize("form", ["flat", "Python section"])
@pytest.mark.parametrize(
    ("flat", "key", "value", "field", "expected"), OPTIONS, ids=[o[0] for o in OPTIONS]
)
def test_config_option_flat_or_in_python_section(
    driver: Path,
    cwd: Path,
    form: str,
    flat: str,
    key: str,
    value: object,
    field: str,
    expected: str,
) -> None:
    configuration = {flat: value} if form == "flat" else {"Python": {key: value}}
    parsed = fields(parse(driver, configuration, cwd))
    assert parsed[field] == (under(cwd, expected) if field in PATH_FIELDS else expected)


# (flat option, its key in the "Python" section, the flat value, the section's value,
# the field, what the field holds).
BOTH_FORMS = [
    ("PythonScript", "Path", "/srv/flat.py", "/srv/section.py", "script", "/srv/flat.py"),
    ("PythonMainScript", "MainScript", "/srv/a.py", "/srv/b.py", "main_script", "/srv/a.py"),
    ("PythonVerbose", "Verbose", False, True, "verbose", "false"),
    ("PythonInterpreters", "Interpreters", 2, 5, "interpreters", "2"),
    ("PythonVirtualEnv", "VirtualEnv", "/srv/venv", "/srv/other", "virtual_env", "/srv/venv"),
    ("PythonHome", "Home", "/opt/a", "/opt/b", "home", "/opt/a"),
]


@pytest.mark.parametrize(
    ("flat", "key", "flat_value", "section_value", "field", "expected"),
    BOTH_FORMS,
    ids=[o[0] for o in BOTH_FORMS],
)
def test_config_flat_option_wins_over_python_section(
    driver: Path,
    cwd: Path,
    flat: str,
    key: str,
    flat_value: object,
    section_value: object,
    field: str,
    expected: str,
) -> None:
    configuration = {"Python": {key: section_value}, flat: flat_value}
    assert fields(parse(driver, configuration, cwd))[field] == expected


def test_config_flat_and_section_options_combine(driver: Path, cwd: Path) -> None:
    # Each option is looked up on its own: a flat one does not hide the section's others.
    configuration = {
        "PythonScript": "/srv/plugin.py",
        "Python": {"Path": "/srv/ignored.py", "Interpreters": 6, "Verbose": True},
    }
    parsed = fields(parse(driver, configuration, cwd))
    assert (parsed["script"], parsed["interpreters"], parsed["verbose"]) == (
        "/srv/plugin.py",
        "6",
        "true",
    )


@pytest.mark.parametrize(
    ("value", "cpu_count", "expected"),
    [
        ("auto", 6, "6"),
        ("auto", 1, "1"),
        ("auto", 0, "1"),  # no usable CPU reported: one interpreter
        ("auto", 2000, "1024"),  # as many as the plugin runs at most
        (1, 4, "1"),
        (1024, 4, "1024"),
        ("4", 2, "4"),  # Orthanc configurations often hold numbers as strings
        ("0004", 2, "4"),
        ("1024", 2, "1024"),
    ],
)
def test_config_interpreters_accepted(
    driver: Path, cwd: Path, value: object, cpu_count: int, expected: str
) -> None:
    result = parse(driver, {"PythonInterpreters": value}, cwd, cpu_count=cpu_count)
    assert fields(result)["interpreters"] == expected


@pytest.mark.parametrize("form", ["flat", "Python section"])
@pytest.mark.parametrize(
    "value",
    [0, -1, 1025, "0", "1025", "many", "", "AUTO", "4.5", 2.5, True, None, [4], 1e19, 2**64 - 1]
    + [" 4", "4 ", "+4", "-4", "4\n", "0x4", "99999999999999999999"],
    ids=json.dumps,
)
def test_config_interpreters_refused(driver: Path, cwd: Path, form: str, value: object) -> None:
    if form == "flat":
        configuration, name = {"PythonInterpreters": value}, "PythonInterpreters"
    else:
        configuration, name = {"Python": {"Interpreters": value}}, "Python.Interpreters"
    assert refusal(parse(driver, configuration, cwd)) == (
        f'{name} must be an integer from 1 to 1024 or "auto", not '
        + json.dumps(value, separators=(",", ":"))
    )


WRONG_TYPES = [
    ("PythonScript", 42, "PythonScript must be a string"),
    ("PythonScript", None, "PythonScript must be a string"),
    ("PythonScript", ["a.py"], "PythonScript must be a string"),
    ("PythonMainScript", True, "PythonMainScript must be a string"),
    ("PythonVirtualEnv", {}, "PythonVirtualEnv must be a string"),
    ("PythonHome", 3, "PythonHome must be a string"),
    ("PythonVerbose", "true", "PythonVerbose must be true or false"),
    ("PythonVerbose", 1, "PythonVerbose must be true or false"),
]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    WRONG_TYPES,
    ids=[f"{option}={json.dumps(value)}" for option, value, _ in WRONG_TYPES],
)
def test_config_value_of_the_wrong_type_refused(
    driver: Path, cwd: Path, option: str, value: object, message: str
) -> None:
    assert refusal(parse(driver, {option: value}, cwd)) == message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Path", 42, "Python.Path must be a string"),
        ("MainScript", None, "Python.MainScript must be a string"),
        ("VirtualEnv", ["venv"], "Python.VirtualEnv must be a string"),
        ("Home", {}, "Python.Home must be a string"),
        ("Verbose", "yes", "Python.Verbose must be true or false"),
    ],
)
def test_config_refusal_names_the_option_inside_the_python_section(
    driver: Path, cwd: Path, key: str, value: object, message: str
) -> None:
    assert refusal(parse(driver, {"Python": {key: value}}, cwd)) == message


@pytest.mark.parametrize("section", ["/srv/plugin.py", 4, ["Path"], None, True])
def test_config_python_section_that_is_not_an_object_refused(
    driver: Path, cwd: Path, section: object
) -> None:
    # Its options would otherwise be ignored without a word (the existing plugin refuses it too).
    configuration = {"PythonScript": "/srv/plugin.py", "Python": section}
    assert refusal(parse(driver, configuration, cwd)) == (
        'the "Python" section must be a JSON object'
    )


def test_config_relative_paths_are_made_absolute(driver: Path, cwd: Path) -> None:
    configuration = {
        "PythonScript": "scripts/plugin.py",
        "PythonMainScript": "main.py",
        "PythonVirtualEnv": "venvs/orthanc",
        "PythonHome": "python",
    }
    parsed = fields(parse(driver, configuration, cwd))
    assert (
        parsed["script"],
        parsed["main_script"],
        parsed["virtual_env"],
        parsed["home"],
    ) == (
        under(cwd, "scripts/plugin.py"),
        under(cwd, "main.py"),
        under(cwd, "venvs/orthanc"),
        under(cwd, "python"),
    )


def test_config_empty_script_means_none(driver: Path, cwd: Path) -> None:
    parsed = fields(parse(driver, {"PythonScript": "", "Python": {"Path": "/srv/a.py"}}, cwd))
    assert parsed["script"] == ""


@pytest.mark.parametrize(
    "text", ["", "nope", "{", '{"PythonScript": "a.py"', '{"PythonScript" "a.py"}', "[]", '"a"']
)
def test_config_unparseable_json_refused(driver: Path, cwd: Path, text: str) -> None:
    assert refusal(parse(driver, text, cwd)).startswith("cannot parse Orthanc's configuration")


def test_config_reports_the_existing_python_plugin_in_plugins(driver: Path, cwd: Path) -> None:
    for name in ("libOrthancPython.so", "libOrthancPythonMulti.so", "libOrthancDicomWeb.so"):
        (cwd / name).write_bytes(b"")
    configuration = {
        "Plugins": [str(cwd / "libOrthancPythonMulti.so"), str(cwd / "libOrthancDicomWeb.so")]
    }
    assert other_python_plugins(parse(driver, configuration, cwd)) == []
    configuration["Plugins"].append(str(cwd / "libOrthancPython.so"))
    assert other_python_plugins(parse(driver, configuration, cwd)) == [
        str(cwd / "libOrthancPython.so")
    ]


def test_config_scans_a_plugins_directory(driver: Path, cwd: Path) -> None:
    plugins = cwd / "plugins"
    plugins.mkdir()
    for name in ("libOrthancPython.so", "libOrthancPythonMulti.so", "libOrthancDicomWeb.so"):
        (plugins / name).write_bytes(b"")
    result = parse(driver, {"Plugins": [str(plugins)]}, cwd)
    assert other_python_plugins(result) == [str(plugins / "libOrthancPython.so")]


def test_config_plugins_directory_without_the_existing_python_plugin(
    driver: Path, cwd: Path
) -> None:
    plugins = cwd / "plugins"
    plugins.mkdir()
    (plugins / "libOrthancPythonMulti.so").write_bytes(b"")
    result = parse(driver, {"Plugins": [str(plugins), 42]}, cwd)
    assert other_python_plugins(result) == []
