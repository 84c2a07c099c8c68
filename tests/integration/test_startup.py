"""Start-up and shutdown of the plugin (src/plugin.cpp, src/interpreter_pool.cpp)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orthanc_python_multi import plugin_path

from .conftest import StartOrthanc
from .helpers import wait_for_log

BAD_SCRIPTS = {
    "syntax-error": ("def broken(:\n    pass\n", "SyntaxError"),
    "exception": (
        "import orthanc\nraise RuntimeError('refusing to load')\n",
        "RuntimeError: refusing to load",
    ),
    "missing-module": (
        "import orthanc\nimport no_such_module_here\n",
        "ModuleNotFoundError: No module named 'no_such_module_here'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SCRIPTS))
def test_failing_script_stops_orthanc_with_an_explanation(
    orthanc: StartOrthanc, case: str, interpreters: int
) -> None:
    script, expected = BAD_SCRIPTS[case]
    server = orthanc(script, interpreters=interpreters, wait=False)
    assert server.wait_exit() != 0
    log = server.log()
    assert expected in log
    assert "raised an exception while loading in interpreter 0" in log
    assert "Orthanc does not start: fix the script" in log
    assert "Orthanc has started" not in log
    assert "Fatal Python error" not in log


def test_no_script_leaves_the_plugin_inactive(orthanc: StartOrthanc) -> None:
    server = orthanc("", extra={"PythonScript": ""})
    assert "no PythonScript in the configuration, the plugin stays inactive" in server.log()
    assert server.get("/system").status_code == 200


WHERE = """
import json
import orthanc

def Count(output, uri, **request):
    output.AnswerBuffer(json.dumps(orthanc.GetInterpreterCount()), 'application/json')

orthanc.RegisterRestCallback('/count', Count)
"""


def test_auto_means_one_interpreter_per_usable_core(orthanc: StartOrthanc) -> None:
    server = orthanc(WHERE, interpreters="auto")
    assert server.get("/count").json() == len(os.sched_getaffinity(0))


def test_python_section_options_are_accepted(orthanc: StartOrthanc) -> None:
    server = orthanc(WHERE, interpreters=1, extra={"Python": {"Interpreters": 2, "Verbose": False}})
    # The flat option wins when both are given, as written by build_config.
    assert server.get("/count").json() == 1
    del server.config["PythonInterpreters"]
    server.stop()
    server.start()
    assert server.get("/count").json() == 2


@pytest.mark.parametrize("value", [0, "many", -3, 1.5])
def test_invalid_interpreter_count_is_refused(orthanc: StartOrthanc, value: object) -> None:
    server = orthanc(WHERE, interpreters=value, wait=False)  # type: ignore[arg-type]
    assert server.wait_exit() != 0
    assert 'PythonInterpreters must be an integer from 1 to 1024 or "auto"' in server.log()


EXISTING_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPython.so"


@pytest.mark.parametrize("ours_first", [True, False])
def test_existing_python_plugin_in_the_same_process_is_refused(
    orthanc: StartOrthanc, ours_first: bool
) -> None:
    assert os.path.exists(EXISTING_PLUGIN), "the Debian package orthanc-python is a test dependency"
    plugins = [str(plugin_path()), EXISTING_PLUGIN]
    if not ours_first:
        plugins.reverse()
    server = orthanc(WHERE, interpreters=2, extra={"Plugins": plugins}, wait=False)
    assert server.wait_exit() != 0
    log = server.log()
    if ours_first:
        # Ours loads first and sees the other in "Plugins".
        assert "two embedded Pythons cannot share one Orthanc process" in log
    else:
        # Both are named "python" (ours is a drop-in): Orthanc refuses the second
        # before initializing it.
        assert "Plugin 'python' already registered" in log
    assert "Orthanc has started" not in log
    assert "Fatal Python error" not in log


STUBBORN_THREAD = """
import threading
import time
import orthanc

def Forever():
    while True:
        time.sleep(0.05)

threading.Thread(target=Forever, name='stubborn-%d' % orthanc.GetInterpreterIndex()).start()
"""


def test_thread_that_never_stops_does_not_hang_orthanc(
    orthanc: StartOrthanc, interpreters: int
) -> None:
    server = orthanc(STUBBORN_THREAD, interpreters=interpreters)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 40
    log = server.log()
    assert "stubborn-0" in log
    assert "still run after 10 s" in log


THREADS_THAT_FINISH = """
import threading
import time
import orthanc

def Work():
    time.sleep(0.5)
    orthanc.LogWarning('worker %d done' % orthanc.GetInterpreterIndex())

threading.Thread(target=Work).start()
"""


def test_stop_waits_for_threads_that_finish(orthanc: StartOrthanc, interpreters: int) -> None:
    server = orthanc(THREADS_THAT_FINISH, interpreters=interpreters)
    assert server.stop() == 0
    log = server.log()
    for index in range(interpreters):
        assert f"worker {index} done" in log
    assert "still run after" not in log


def test_python_virtual_env_option_points_to_another_environment(
    orthanc: StartOrthanc, tmp_path: Path
) -> None:
    venv = tmp_path / "other-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    (site / "only_in_other_venv.py").write_text("VALUE = 'from the other venv'\n")
    script = """
    import orthanc
    import only_in_other_venv
    orthanc.LogWarning('%s in %d' % (only_in_other_venv.VALUE, orthanc.GetInterpreterIndex()))
    """
    server = orthanc(script, interpreters=2, extra={"PythonVirtualEnv": str(venv)})
    log = server.log()
    assert "from the other venv in 0" in log and "from the other venv in 1" in log
    broken = orthanc(script, interpreters=2, extra={"PythonVirtualEnv": str(tmp_path)}, wait=False)
    assert broken.wait_exit() != 0
    assert f"has no lib/{version}/site-packages" in broken.log()


@pytest.mark.parametrize("option", ["PythonHome", "Python.Home"])
def test_python_home_option_moves_the_base_python(
    orthanc: StartOrthanc, tmp_path: Path, option: str
) -> None:
    # The base Python found elsewhere than where the plugin was built: a link.
    moved = tmp_path / "moved-python"
    moved.symlink_to(sys.base_prefix)
    script = """
    import sys
    import orthanc
    orthanc.LogWarning('base prefix %s in %d' % (sys.base_prefix, orthanc.GetInterpreterIndex()))
    """
    extra = (
        {"PythonHome": str(moved)} if option == "PythonHome" else {"Python": {"Home": str(moved)}}
    )
    server = orthanc(script, interpreters=2, extra=extra)
    log = server.log()
    for index in range(2):
        assert f"base prefix {moved} in {index}" in log
    broken = orthanc(script, extra={**extra, "PythonHome": str(tmp_path / "nowhere")}, wait=False)
    assert broken.wait_exit() != 0
    assert "cannot initialize Python" in broken.log()


# A thread of interpreter 0 runs while the next interpreters are created.
THREAD_DURING_START = """
import threading
import time
import orthanc

def Reader():
    errors, calls = set(), 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and calls < 2_000_000:
        try:
            orthanc.GetInterpreterIndex()
        except Exception as error:
            errors.add(repr(error))
        calls += 1
    orthanc.LogWarning('reader errors: %r' % sorted(errors))

if orthanc.GetInterpreterIndex() == 0:
    threading.Thread(target=Reader).start()
"""


def test_thread_reading_interpreters_while_they_are_created(orthanc: StartOrthanc) -> None:
    server = orthanc(THREAD_DURING_START, interpreters=8)
    lines = wait_for_log(server, "reader errors: ")
    assert len(lines) == 1 and lines[0].endswith("reader errors: []"), lines


WHERE_AM_I = """
import json
import orthanc

orthanc.LogWarning('script %s runs in %d' % (__file__, orthanc.GetInterpreterIndex()))
"""


@pytest.mark.parametrize("form", ["Python.Path", "relative PythonScript"])
def test_script_named_by_python_path_or_a_relative_path(orthanc: StartOrthanc, form: str) -> None:
    server = orthanc(WHERE_AM_I, interpreters=2, start=False)
    script = server.folder / "plugin_script.py"
    if form == "Python.Path":
        del server.config["PythonScript"]
        server.config["Python"] = {"Path": str(script)}
    else:
        server.config["PythonScript"] = "plugin_script.py"  # from Orthanc's working folder
    server.return_code = None
    server.start()
    for index in range(2):
        assert f"script {script} runs in {index}" in server.log()


@pytest.mark.parametrize("verbose", [True, False])
def test_python_verbose_logs_imports(orthanc: StartOrthanc, verbose: bool) -> None:
    server = orthanc("import orthanc\nimport json\n", extra={"PythonVerbose": verbose})
    assert ("import 'json'" in server.log()) == verbose
