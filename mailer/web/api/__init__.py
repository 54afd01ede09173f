"""The JSON admin API (bearer token), described by the OpenAPI schema at /api/openapi.json."""
