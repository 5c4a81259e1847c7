"""Clients for Azure's APIs, made once per command: ARM (``azure-mgmt-web``) and Blob Storage.

Credentials: ``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure CLI
login), or a bearer token a CI step already holds in ``MPACK_AZURE_ACCESS_TOKEN``
(``az account get-access-token``). Blob Storage: a connection string when given (the deployment
account's, or ``AZURE_STORAGE_CONNECTION_STRING``), else the same credential (the identity needs
Storage Blob Data Contributor on the container). ``MPACK_AZURE_ARM_ENDPOINT`` points ARM elsewhere
(a sovereign cloud).

Azure's exceptions are translated here, once, into ``MpackError`` naming the call that failed.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from mpack.infra.errors import MpackError
from mpack.infra.extras import require

ARM_ENDPOINT_ENV = "MPACK_AZURE_ARM_ENDPOINT"
TOKEN_ENV = "MPACK_AZURE_ACCESS_TOKEN"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
STORAGE_ENV = "AZURE_STORAGE_CONNECTION_STRING"


def sdk(module: str):
    """A module of Azure's SDK: mpack's [azure] extra, not its core install."""
    return require(module, "azure", "talking to Azure (deploy, promote, rollback of an azure bundle)")


class StaticToken:
    """A bearer token obtained elsewhere (a TokenCredential for azure-core)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes, **kwargs):
        return sdk("azure.core.credentials").AccessToken(self._token, int(time.time()) + 3600)


@dataclass
class AzureTarget:
    subscription: str
    resource_group: str
    app: str
    storage_connection_string: str | None = None


class AzureSession:
    def __init__(self, target: AzureTarget) -> None:
        self.target = target
        self._credential = None
        self._web = None

    @property
    def credential(self):
        if self._credential is None:
            token = os.environ.get(TOKEN_ENV)
            if token:
                self._credential = StaticToken(token)
            else:
                self._credential = sdk("azure.identity").DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self._credential

    @property
    def web(self):
        if self._web is None:
            WebSiteManagementClient = sdk("azure.mgmt.web").WebSiteManagementClient
            endpoint = os.environ.get(ARM_ENDPOINT_ENV)
            options = {"base_url": endpoint, "credential_scopes": ["https://management.azure.com/.default"]} if endpoint else {}
            self._web = WebSiteManagementClient(self.credential, self.target.subscription, **options)
        return self._web

    def container(self, container_url: str, connection_string: str | None = None):
        """A ContainerClient for ``https://ACCOUNT.blob.core.windows.net/CONTAINER`` (or Azurite's
        ``http://127.0.0.1:10000/devstoreaccount1/CONTAINER``)."""
        blob = sdk("azure.storage.blob")
        connection = connection_string or self.target.storage_connection_string
        name = container_url.rstrip("/").rsplit("/", 1)[-1]
        if connection:
            return blob.BlobServiceClient.from_connection_string(connection).get_container_client(name)
        return blob.ContainerClient.from_container_url(container_url, credential=self.credential)


def resolve_subscription(given: str | None) -> str:
    subscription = given or os.environ.get(SUBSCRIPTION_ENV)
    if not subscription:
        raise MpackError("no Azure subscription", f"pass --subscription ID, or set {SUBSCRIPTION_ENV}")
    return subscription


@contextmanager
def azure_call(what: str):
    """Azure's errors as MpackError, naming ``what`` was being done."""
    errors = sdk("azure.core.exceptions")
    try:
        yield
    except errors.ClientAuthenticationError as exc:
        raise MpackError(
            f"Azure refused the credentials while trying to {what}: {_first_line(exc)}", f"sign in (az login), set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or {TOKEN_ENV}"
        ) from None
    except errors.ResourceNotFoundError as exc:
        raise MpackError(
            f"not found while trying to {what}: {_first_line(exc)}", "check the names (--app, --resource-group, --subscription); create the app first (mpack export --format bicep)"
        ) from None
    except errors.HttpResponseError as exc:
        status = getattr(exc, "status_code", None)
        hint = "the identity lacks a role on this resource (Website Contributor on the app, Storage Blob Data Contributor on the container)" if status == 403 else "see Azure's message"
        raise MpackError(f"Azure answered {status} while trying to {what}: {_first_line(exc)}", hint) from None
    except errors.ServiceRequestError as exc:
        raise MpackError(f"cannot reach Azure while trying to {what}: {_first_line(exc)}", "check the network, proxy settings and MPACK_AZURE_ARM_ENDPOINT") from None


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__
