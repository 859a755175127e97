# What type checkers see: the names __init__.py loads lazily from linkinit.client.
from linkinit.client import Endpoint as Endpoint
from linkinit.client import Link as Link
from linkinit.client import LinkError as LinkError
from linkinit.client import links as links
from linkinit.client import prefix as prefix
from linkinit.client import require as require
from linkinit.client import require_env as require_env
from linkinit.client import service_variables as service_variables

__version__: str
__all__: list[str]
