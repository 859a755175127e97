# What type checkers see: the names __init__.py loads lazily from linkinit.client.
from .client import Endpoint as Endpoint
from .client import Link as Link
from .client import LinkError as LinkError
from .client import links as links
from .client import prefix as prefix
from .client import require as require
from .client import require_env as require_env
from .client import service_variables as service_variables

__version__: str
__all__: list[str]
