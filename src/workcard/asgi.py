"""The ASGI entry point for servers: ``uvicorn workcard.asgi:app``."""

from workcard.app import create_app

app = create_app()
