"""The page's stand-in for the ``resource`` module, which Pyodide does not have.

The redaction gate's parsing child (``_worker``) imports ``resource`` to set
rlimits on itself. In the page that child's work runs in the gate Worker
(``carebridge.gateway.client.redaction.inpage``), whose limits the browser
side enforces: the Worker is terminated at the time limit and its WebAssembly
heap is not allowed past the memory limit. Nothing here sets a limit, so
asking for one fails loudly instead of pretending.
"""

RLIMIT_AS, RLIMIT_CPU, RLIMIT_CORE, RLIMIT_FSIZE = range(4)


def setrlimit(resource, limits):
    raise OSError("no rlimits in the page: the gate Worker's host enforces the limits")
