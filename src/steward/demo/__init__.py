"""The guided tour behind ``steward demo``: a scripted walk over the public APIs."""

from steward.demo._tour import DemoReport, run_demo

__all__ = ["DemoReport", "run_demo"]
