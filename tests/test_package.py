"""The package itself: import, version, show_config tells the truth, thread and SIMD APIs,
environment variables, the fastai name-clash warning."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest

import fastcore
from fastcore import _cpu



def _last_line(stdout: str) -> str:
    """The subprocess's printed value: an editable install's rebuild-on-import may print
    "Running cmake --build ..." before it."""
    lines = stdout.strip().splitlines()
    return lines[-1] if lines else ""

def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    for k in ("FASTCORE_NUM_THREADS", "FASTCORE_SIMD"):
        full_env.pop(k, None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_version_matches_distribution_metadata():
    assert fastcore.__version__ == metadata.version(_cpu.build_info()["distribution"])
    assert fastcore.__version__ == _cpu.__version__


def test_public_names_exist():
    for name in fastcore.__all__:
        assert hasattr(fastcore, name), name


def test_show_config_reports_the_real_state(restore_threads):
    fastcore.set_num_threads(3)
    buf = io.StringIO()
    fastcore.show_config(file=buf)
    text = buf.getvalue()
    assert f"{_cpu.build_info()['distribution']} {fastcore.__version__}" in text
    assert f"{fastcore.get_simd_level()} in use" in text
    assert "threads     : 3" in text
    info = _cpu.build_info()
    assert info["compiler"] in text
    try:
        from fastcore import _cuda
    except ImportError:
        assert "cuda backend: not compiled" in text
    else:
        for arch in _cuda.compiled_architectures():
            assert arch in text
    assert ("cupy arrays : supported" in text) == fastcore.cuda_available()


def test_show_config_to_stdout(capsys):
    fastcore.show_config()
    assert "fastcore-kernels" in capsys.readouterr().out


def test_config_dict_is_consistent():
    c = fastcore.config()
    assert c["simd"]["active"] == fastcore.get_simd_level()
    assert c["simd"]["active"] in c["simd"]["available"]
    assert set(c["simd"]["available"]) <= set(c["simd"]["compiled"])
    assert "scalar" in c["simd"]["available"]
    assert c["threads"]["current"] == fastcore.get_num_threads()
    assert not c["native"], "the default build must not use -march=native"


def test_set_and_get_num_threads(restore_threads):
    fastcore.set_num_threads(1)
    assert fastcore.get_num_threads() == 1
    fastcore.set_num_threads(5)
    assert fastcore.get_num_threads() == 5
    with fastcore.num_threads(2):
        assert fastcore.get_num_threads() == 2
    assert fastcore.get_num_threads() == 5


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (10**6, ValueError),
                                      (2.0, TypeError), ("4", TypeError), (True, TypeError), (None, TypeError)])
def test_set_num_threads_rejects_bad_values(bad, exc, restore_threads):
    before = fastcore.get_num_threads()
    with pytest.raises(exc, match="n: expected"):
        fastcore.set_num_threads(bad)
    assert fastcore.get_num_threads() == before


def test_num_threads_environment_variable():
    r = run_python("import fastcore; print(fastcore.get_num_threads())", {"FASTCORE_NUM_THREADS": "3"})
    assert r.returncode == 0, r.stderr
    assert _last_line(r.stdout) == "3"


def test_invalid_num_threads_environment_variable_warns():
    r = run_python("import fastcore; print(fastcore.get_num_threads())", {"FASTCORE_NUM_THREADS": "lots"})
    assert r.returncode == 0, r.stderr
    assert "FASTCORE_NUM_THREADS='lots'" in r.stderr
    assert int(_last_line(r.stdout)) >= 1


@pytest.mark.parametrize("level", ["scalar", "avx2", "avx512"])
def test_simd_environment_variable_forces_each_level(level):
    r = run_python("import fastcore; print(fastcore.get_simd_level())", {"FASTCORE_SIMD": level})
    assert r.returncode == 0, r.stderr
    if level in fastcore.available_simd_levels():
        assert _last_line(r.stdout) == level
        assert "not honoured" not in r.stderr
    else:  # not supported here: the best available is used, with a warning
        assert _last_line(r.stdout) == fastcore.available_simd_levels()[-1]
        assert "FASTCORE_SIMD" in r.stderr


def test_bad_simd_environment_variable_warns():
    r = run_python("import fastcore; print(fastcore.get_simd_level())", {"FASTCORE_SIMD": "sse9"})
    assert r.returncode == 0, r.stderr
    assert "FASTCORE_SIMD='sse9'" in r.stderr
    assert _last_line(r.stdout) == _cpu.best_simd_level()


def test_set_simd_level(restore_simd):
    for level in fastcore.available_simd_levels():
        fastcore.set_simd_level(level)
        assert fastcore.get_simd_level() == level
        with fastcore.simd_level("scalar"):
            assert fastcore.get_simd_level() == "scalar"
        assert fastcore.get_simd_level() == level
    fastcore.set_simd_level("auto")
    assert fastcore.get_simd_level() == _cpu.best_simd_level()


def test_set_simd_level_rejects_bad_values(restore_simd):
    with pytest.raises(ValueError, match="level: expected one of"):
        fastcore.set_simd_level("sse4")
    with pytest.raises(TypeError, match="level: expected a string"):
        fastcore.set_simd_level(2)
    unavailable = [lvl for lvl in ("avx2", "avx512") if lvl not in fastcore.available_simd_levels()]
    for lvl in unavailable:
        with pytest.raises(ValueError, match="not available"):
            fastcore.set_simd_level(lvl)


def test_fastai_fastcore_clash_warns(tmp_path):
    # A fake installed distribution named 'fastcore' (fastai's) on the path.
    dist = tmp_path / "fastcore-1.7.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fastcore\nVersion: 1.7.0\n")
    r = run_python("import fastcore", {"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "fastai's 'fastcore' distribution (1.7.0)" in r.stderr


def test_two_fastcore_kernels_variants_warn(tmp_path):
    dist = tmp_path / "fastcore_kernels_cu13-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fastcore-kernels-cu13\nVersion: 0.1.0\n")
    r = run_python("import fastcore", {"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "several builds of fastcore are installed at once" in r.stderr
    assert "fastcore-kernels-cu13 0.1.0" in r.stderr


def test_set_variant_tool(tmp_path):
    import pathlib
    import shutil

    root = pathlib.Path(__file__).resolve().parent.parent
    if not (root / "tools" / "set_variant.py").exists():
        pytest.skip("source tree not available")
    (tmp_path / "tools").mkdir()
    shutil.copy(root / "tools" / "set_variant.py", tmp_path / "tools")
    shutil.copy(root / "pyproject.toml", tmp_path)
    script = str(tmp_path / "tools" / "set_variant.py")
    assert subprocess.run([sys.executable, script, "cu13"], capture_output=True).returncode == 0
    assert 'name = "fastcore-kernels-cu13"' in (tmp_path / "pyproject.toml").read_text()
    assert subprocess.run([sys.executable, script, "cpu"], capture_output=True).returncode == 0
    assert 'name = "fastcore-kernels"\n' in (tmp_path / "pyproject.toml").read_text()
    assert subprocess.run([sys.executable, script, "rocm"], capture_output=True).returncode == 2


def test_no_clash_warning_normally():
    r = run_python("import warnings; warnings.simplefilter('error'); import fastcore")
    assert r.returncode == 0, r.stderr


def test_import_does_not_import_cupy_or_torch():
    r = run_python("import sys, fastcore; print('cupy' in sys.modules, 'torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert _last_line(r.stdout) == "False False"


def test_reference_package_is_float64():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    y = fastcore.reference.exp(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.exp(x.astype(np.float64)))


def _compiled_modules():
    mods = [_cpu]
    try:
        from fastcore import _cuda
        mods.append(_cuda)
    except ImportError:
        pass
    return mods


@pytest.mark.skipif(sys.platform != "linux", reason="ELF symbol tables")
@pytest.mark.skipif(bool(_cpu.build_info()["sanitize"]), reason="the sanitizer build exports more on purpose")
@pytest.mark.parametrize("module", _compiled_modules(), ids=lambda m: m.__name__)
def test_extension_modules_export_only_their_init_function(module):
    """cmake/python_module.map: nothing but PyInit_<name> is exported, so a statically linked C++
    or CUDA runtime inside a module cannot be mixed with another extension's copy (seen on a GPU
    machine whose toolchain linked libstdc++ statically: formatting an int in an error message
    crashed the interpreter)."""
    import shutil

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm (binutils) on this machine")
    out = subprocess.run([nm, "-D", "--defined-only", module.__file__], capture_output=True,
                         text=True, check=True).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    name = module.__name__.rsplit(".", 1)[-1]
    assert exported == [f"PyInit_{name}"]


def test_compiled_error_messages_format_numbers():
    """A C++-side check whose message formats an integer raises ValueError carrying it (the path
    that crashed when two C++ runtimes were mixed in one process)."""
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="unknown map 9"):
        _cpu.activations.forward(9, x, None, x, 1, 4, 1, 1.0, 0.0, 0)
