import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # steadier on 2 cores
# The CLI turns the persistent compilation cache on by default; tests that call it in process must not
# write to the user's cache (subprocess tests pass their own JAX_COMPILATION_CACHE_DIR; test_compile_cache
# turns it on explicitly).
os.environ.setdefault("RLX_NO_COMPILE_CACHE", "1")

_SESSION_CACHE_ENV = "RLX_TEST_SESSION_COMPILE_CACHE"


def pytest_configure(config):
    """One persistent compilation cache per test session, in a fresh temporary directory that the xdist workers
    share: a program that several tests build (the same preset trained, resumed or swept in another test or on
    the other worker) compiles once. Programs compiling in under a second are not stored (JAX's default). The
    directory is removed at the end, so CI never starts from an earlier session's programs.
    ``RLX_TEST_SESSION_COMPILE_CACHE=off`` turns it off; set to a directory, that one is used and kept."""
    import shutil
    import tempfile

    import jax

    if os.environ.get(_SESSION_CACHE_ENV) == "off":
        return
    if _SESSION_CACHE_ENV not in os.environ:  # the controller (or a run without xdist) makes it
        os.environ[_SESSION_CACHE_ENV] = tempfile.mkdtemp(prefix="rlx-tests-jax-cache-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(_SESSION_CACHE_ENV), ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", os.environ[_SESSION_CACHE_ENV])
