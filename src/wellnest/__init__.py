"""wellnest: scaffold FastAPI services with Copier, then keep growing them."""

__version__ = "0.5.0"
