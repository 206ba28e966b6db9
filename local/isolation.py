"""Lambda tenant isolation mode on the local stack: one tenant API instance per tenant.

With ``python -m local up --lambda-tenant-isolation`` the gateway invokes the tenant API the way Lambda
does in ``PER_TENANT`` mode: each tenant's requests run in that tenant's own instance of the handler module
(its own resolver, logger and client cache: the module-level state an execution environment keeps warm),
never in another tenant's, and the invocation carries the tenant id (``context.tenant_id``) taken from the
authorizer's context, as the API's integration mapping does. A fresh instance is the module executed
again, not imported from the cache: the other instances' state is out of its reach.

What is not emulated: Lambda keeps each environment in its own microVM (memory, ``/tmp``, threads); here
the instances share one process, so they are apart only in module state. Instances are reclaimed least
recently used first beyond ``max_instances``, as Lambda reclaims idle environments.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

from local.gateway import Function, LambdaHandler

MAX_INSTANCES: Final = 256


@dataclass
class Instance:
    """One tenant's warm instance of the handler module."""

    tenant_id: str | None
    module: ModuleType
    function: Function
    invocations: int = 0

    def describe(self) -> dict[str, Any]:
        """What its module-level state holds: the tenants whose credentials its client cache keeps."""
        clients = getattr(self.module, "data_clients", None)
        cached = clients.cached_tenants() if clients is not None else []
        return {"tenant_id": self.tenant_id, "invocations": self.invocations, "cached_tenants": cached}


def fresh_module(module_name: str) -> ModuleType:
    """``module_name`` executed anew, with its own module-level state, not registered in sys.modules."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {module_name!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class TenantInstances:
    """The tenant API as Lambda runs it in tenant isolation mode: an instance per tenant id."""

    function_name: str
    entry_point: str
    """``package.module.function`` of the handler."""
    max_instances: int = MAX_INSTANCES
    # One lock for every instance: the handler's web framework keeps the current request in class
    # attributes shared by all instances of the module, so they take turns, as one container would.
    lock: threading.Lock = field(default_factory=threading.Lock)
    _instances: OrderedDict[str, Instance] = field(default_factory=OrderedDict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def function_for(self, tenant_id: str) -> Function:
        """The tenant's own instance, made on its first request."""
        with self._guard:
            instance = self._instances.get(tenant_id)
            if instance is None:
                instance = self._new_instance(tenant_id)
                self._instances[tenant_id] = instance
                while len(self._instances) > self.max_instances:
                    self._instances.popitem(last=False)
            self._instances.move_to_end(tenant_id)
            instance.invocations += 1
            return instance.function

    def describe(self) -> list[dict[str, Any]]:
        with self._guard:
            return [instance.describe() for instance in self._instances.values()]

    def _new_instance(self, tenant_id: str) -> Instance:
        module_name, _, handler_name = self.entry_point.rpartition(".")
        module = fresh_module(module_name)
        handler: LambdaHandler = getattr(module, handler_name)
        return Instance(tenant_id, module, Function(self.function_name, handler, self.lock))
