"""The service's routes, one module per area, mounted under ``/api/v1``."""
