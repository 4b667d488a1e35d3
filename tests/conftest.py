import os

# Every graph mlc.jit traces during the tests is verified and printed/parsed back (round trip).
os.environ.setdefault("MLC_VERIFY", "1")
# Compiled kernels go to a cache shared by the test workers (and by later runs), not ~/.cache.
os.environ.setdefault(
    "MLC_CACHE_DIR", os.path.join(__import__("tempfile").gettempdir(), f"mlc-tests-{os.getuid()}")
)

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
