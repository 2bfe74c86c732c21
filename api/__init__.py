"""The Starlette application, the `loyalty` CLI and settings: the only layer that reads the environment."""
