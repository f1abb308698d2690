"""Typed application keys: the resources ``create_app`` wires into the app."""

from __future__ import annotations

from aiohttp import web

from carebridge.storage.blobs.base import BlobStore
from carebridge.storage.db.store import Store

from .checkpoints import Checkpointer
from .linkkeys import KeyringCache
from .metrics import Metrics
from .ratelimit import Lockouts, Rate
from .settings import Settings
from .usecases.services import Services

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
STORE: web.AppKey[Store] = web.AppKey("store", Store)
BLOBS: web.AppKey[BlobStore] = web.AppKey("blobs", BlobStore)
CHECKPOINTER: web.AppKey[Checkpointer] = web.AppKey("checkpointer", Checkpointer)
LOCKOUTS: web.AppKey[Lockouts] = web.AppKey("lockouts", Lockouts)
LINK_CLAIMS: web.AppKey[Rate] = web.AppKey("link_claims", Rate)
KEYRING: web.AppKey[KeyringCache] = web.AppKey("keyring", KeyringCache)
SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
