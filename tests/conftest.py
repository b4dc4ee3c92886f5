import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")  # steadier on 2 cores
# The CLI turns the persistent compilation cache on by default; tests that call it in process must not
# write to the user's cache (subprocess tests pass their own JAX_COMPILATION_CACHE_DIR; test_compile_cache
# turns it on explicitly).
os.environ.setdefault("RLX_NO_COMPILE_CACHE", "1")
