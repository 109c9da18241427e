"""The web console: server-rendered pages over the same API, for people."""

from __future__ import annotations

from fastapi import FastAPI

from berth.api.bus import Bus


def mount(app: FastAPI, bus: Bus) -> None:
    del app, bus
