"""The HTTP API and dashboard page (`metrics serve`): FastAPI on uvicorn."""

from serving.http.app import create_app
from serving.http.context import ServerSettings

__all__ = ["ServerSettings", "create_app"]
