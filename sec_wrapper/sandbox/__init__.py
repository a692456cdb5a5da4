"""The sandbox: a real local mini-cluster (sshd, PostgreSQL, Apache, site apps) for tests and demos."""

from sec_wrapper.sandbox.sandbox import Sandbox, default_dir

__all__ = ["Sandbox", "default_dir"]
