# Loaded (through PYTHONPATH) into the A2A TCK 0.3.x run by tests/conformance.rs.
#
# 1. That kit sends no A2A-Version header, so it would read the gateway's 1.0
#    agent card at /.well-known/agent-card.json. A 0.3 client says which
#    version it speaks: every requests session of the kit says "0.3".
# 2. The kit has no option for credentials. Its JSON-RPC client gets the
#    client key from OMNIROUTE_TCK_KEY as a default header, exposed as
#    `client.headers` (the attribute the kit's no-auth tests clear); the kit's
#    own deliberately unauthenticated requests (plain sessions) carry none.
import importlib.abc
import importlib.util
import os
import sys

import requests

_session_init = requests.Session.__init__


def _with_version(self, *args, **kwargs):
    _session_init(self, *args, **kwargs)
    self.headers["A2A-Version"] = "0.3"


requests.Session.__init__ = _with_version

_KEY = os.environ.get("OMNIROUTE_TCK_KEY")
_TARGET = "tck.transport.jsonrpc_client"


class _KeyHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET or not _KEY:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            cls = module.JSONRPCClient
            init = cls.__init__

            def patched(self, *args, **kwargs):
                init(self, *args, **kwargs)
                self.client.headers["Authorization"] = f"Bearer {_KEY}"
                self.client.headers["A2A-Version"] = "0.3"
                self.headers = self.client.headers

            cls.__init__ = patched

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _KeyHook())
