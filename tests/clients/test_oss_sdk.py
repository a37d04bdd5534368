"""oss2 is imported with its encryption-only dependencies deferred, and they still work when used.

Each test runs a fresh interpreter: in this one, other tests have imported oss2 long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run_fresh(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_the_storage_layer_does_not_run_the_encryption_dependencies() -> None:
    found = run_fresh(
        """
        import json, sys
        import migrator.clients.storage
        import migrator.clients.replication
        names = [n for n in sys.modules if n.split(".")[0] in ("Crypto", "aliyunsdkcore", "aliyunsdkkms")]
        lazy = [n for n in names if type(sys.modules[n]).__name__ == "_LazyModule"]
        print(json.dumps({"lazy": lazy, "oss2": "oss2" in sys.modules}))
        """
    )
    assert found["oss2"]
    # the costly ones (the AES and RSA ciphers load native code through cffi; the core SDK client pulls
    # in its own vendored requests) exist but have not run; packages whose names oss2 reads have run
    assert {"Crypto.Cipher.AES", "Crypto.PublicKey.RSA", "aliyunsdkcore.client"} <= set(found["lazy"])


def test_a_deferred_module_runs_when_used_and_gives_the_same_answers() -> None:
    probe = """
        import json
        from migrator.clients.oss_sdk import oss2
        from Crypto.Cipher import AES
        box = AES.new(b"k" * 32, AES.MODE_ECB)
        cipher = oss2.utils.AESCTRCipher()
        print(json.dumps({"ecb": box.encrypt(b"migrator-sixteen").hex(), "key": len(cipher.get_key())}))
        """
    deferred = run_fresh(probe)
    eager = run_fresh("import oss2\n" + textwrap.dedent(probe))
    assert deferred == eager
    assert deferred["key"] == 32
