"""Secrets of no known shape, planted in allowlisted variables: no output may show them.

Shared by tests/test_cli_hardening.py and the fuzzer (tests/test_cli_fuzz.py). FRAGMENTS
are pieces of each secret long enough that finding one in an output means a leak.
"""

from __future__ import annotations

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkZXBsb3kiLCJpYXQiOjE3MDAwMDAwMDB9."
       "Zk3ZbR8mQpW2xN7vL0cT5yH1sJ9dF4gA6eK2uO8iV3M")
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7x9Zq"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\nQ2x8Lp0VbN4mRt7Ys\n-----END PRIVATE KEY-----"
RAW1 = "q8Zr3XvN0pLw7KbT2mYcA9sHj4Ue"
RAW2 = "Xk29fLq0Wz7RvB4mN8cT1pYs6Hd"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWx"
SECRET_ENV = {
    "CUDA_MPS_PIPE_DIRECTORY": f"/tmp/mps/{JWT}",
    "NVIDIA_DEPLOY_CERT": PEM,
    "NUMBA_CACHE_DIR": f"/var/cache/numba/{RAW1}",
    "TORCH_HOME": f"/srv/{RAW2}/torch",
    "PYTORCH_KERNEL_CACHE_PATH": f"/srv/cache/{HF}/kernels",
}
FRAGMENTS = (JWT[:20], JWT.split(".")[1][:16], JWT.split(".")[2][:16], PEM_BODY[:16],
             RAW1[:12], RAW2[:12], HF[3:15])
