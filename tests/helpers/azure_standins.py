"""Azure for the deploy tests: Azurite (Microsoft's storage emulator, real Blob Storage API) and a
minimal stand-in for Azure Resource Manager's App Service endpoints.

ARM cannot run here, so the stand-in answers only the calls the deployer makes (read the site,
list/update app settings, One Deploy, sync triggers, Azure Monitor's metrics of a site or slot) over HTTPS with a self-signed certificate
(azure-core sends bearer tokens over TLS only), and records every request for the tests to assert on.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's published dev key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def azurite_binary(cache: Path) -> Path:
    """Azurite from npm, installed once into the test cache (npm's registry is a package registry)."""
    explicit = os.environ.get("MPACK_AZURITE")
    if explicit:
        return Path(explicit)
    folder = cache / "azurite"
    binary = folder / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is not installed: apt-get install -y npm (Azurite runs on Node.js)")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "azurite@3"], check=True, capture_output=True, timeout=600)
    return binary


class Azurite:
    def __init__(self, cache: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="azurite-"))
        self.port = _free_port()
        command = [str(azurite_binary(cache)), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", str(self.folder), "--skipApiVersionCheck", "--loose", "--silent"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start: " + self.process.stderr.read().decode()[-2000:])
                time.sleep(0.1)

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={self.blob_endpoint};"

    def container(self, name: str):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string).get_container_client(name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # Azurite sometimes finishes its open requests first
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "arm.pem", folder / "arm.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


_SITE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Web/sites/(?P<name>[^/]+)(?P<rest>/.*)?$", re.IGNORECASE)


class ArmStandIn:
    """Sites by name: ``add_flex_app`` / ``add_package_url_app``; ``requests`` holds what came in."""

    def __init__(self, token: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="arm-"))
        self.cert, key = self_signed_certificate(self.folder)
        self.token = token
        self.sites: dict[str, dict] = {}
        self.settings: dict[str, dict] = {}
        self.web_config: dict[str, dict] = {}  # config/web of each site (ramp-up rules)
        self.slots: dict[tuple[str, str], dict] = {}  # (site, slot) -> its settings
        self.metrics: dict[tuple[str, str | None], dict] = {}  # (site, slot or None) -> {"Requests": n, "Http5xx": n, "HttpResponseTime": seconds}: what Azure Monitor reports
        self.requests: list[dict] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def add_flex_app(self, name: str, container_url: str) -> None:
        self.sites[name] = {
            "kind": "functionapp,linux",
            "location": "westeurope",
            "properties": {
                "defaultHostName": f"{name}.azurewebsites.net",
                "reserved": True,
                "state": "Running",
                "functionAppConfig": {
                    "deployment": {
                        "storage": {
                            "type": "blobContainer",
                            "value": container_url,
                            "authentication": {"type": "StorageAccountConnectionString", "storageAccountConnectionStringName": "DEPLOYMENT_STORAGE_CONNECTION_STRING"},
                        }
                    },
                    "runtime": {"name": "python", "version": "3.11"},
                    "scaleAndConcurrency": {"instanceMemoryMB": 2048, "maximumInstanceCount": 100},
                },
            },
        }
        self.settings[name] = {"FUNCTIONS_EXTENSION_VERSION": "~4"}

    def add_package_url_app(self, name: str, storage_connection_string: str) -> None:
        self.sites[name] = {"kind": "functionapp,linux", "location": "westeurope", "properties": {"defaultHostName": f"{name}.azurewebsites.net", "reserved": True, "state": "Running"}}
        self.settings[name] = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": storage_connection_string}
        self.web_config[name] = {"linuxFxVersion": "Python|3.11"}

    def metrics_document(self, name: str, slot: str | None) -> dict:
        """Azure Monitor's answer: one one-minute point per metric (totals for counts, the average for response time)."""
        figures = self.metrics.get((name, slot), {})
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:00Z")
        value = []
        for metric, unit in (("Requests", "Count"), ("Http5xx", "Count"), ("HttpResponseTime", "Seconds")):
            point = {"timeStamp": stamp, **({"average": figures[metric]} if metric == "HttpResponseTime" else {"total": figures[metric]})} if metric in figures else {"timeStamp": stamp}
            value.append({"name": {"value": metric}, "unit": unit, "timeseries": [{"data": [point]}]})
        return {"value": value}

    def writes(self, name: str) -> list[dict]:
        """Requests that would change the app (everything but reads)."""
        return [r for r in self.requests if f"/sites/{name}" in r["path"] and not (r["method"] == "GET" or r["path"].endswith("/appsettings/list"))]

    def stop(self) -> None:
        self._server.shutdown()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _handler(self):
        arm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, document=None) -> None:
                body = json.dumps(document).encode() if document is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                body = json.loads(raw) if raw else None
                arm.requests.append({"method": self.command, "path": path, "query": self.path.partition("?")[2], "body": body, "authorization": self.headers.get("Authorization")})
                if self.headers.get("Authorization") != f"Bearer {arm.token}":
                    return self._reply(401, {"error": {"code": "AuthenticationFailed", "message": "bad token"}})
                found = _SITE.match(path)
                if not found or found["name"] not in arm.sites:
                    return self._reply(404, {"error": {"code": "ResourceNotFound", "message": f"The Resource '{path}' was not found."}})
                name, rest = found["name"], (found["rest"] or "").lower()
                figures = re.match(r"^(?:/slots/([^/]+))?/providers/microsoft\.insights/metrics$", rest)
                if figures and self.command == "GET":
                    return self._reply(200, arm.metrics_document(name, figures.group(1)))
                site = dict(arm.sites[name], id=path.split("/config")[0].split("/extensions")[0], name=name, type="Microsoft.Web/sites")
                if rest == "" and self.command == "GET":
                    return self._reply(200, site)
                if rest == "/config/appsettings/list" and self.command == "POST":
                    return self._reply(200, {"name": "appsettings", "properties": arm.settings[name]})
                if rest == "/config/appsettings" and self.command == "PUT":
                    arm.settings[name] = dict(body["properties"])
                    return self._reply(200, {"name": "appsettings", "properties": arm.settings[name]})
                if rest == "/config/web" and self.command == "GET":
                    return self._reply(200, {"name": "web", "properties": arm.web_config.get(name, {})})
                if rest == "/config/web" and self.command == "PATCH":
                    arm.web_config[name] = {**arm.web_config.get(name, {}), **body["properties"]}
                    return self._reply(200, {"name": "web", "properties": arm.web_config[name]})
                slot = re.match(r"^/slots/([^/]+)(/.*)?$", rest)
                if slot:
                    key, tail = (name, slot.group(1)), slot.group(2) or ""
                    if tail == "" and self.command == "PUT":
                        arm.slots[key] = {}
                        return self._reply(200, dict(site, name=f"{name}/{key[1]}", properties={"defaultHostName": f"{name}-{key[1]}.azurewebsites.net", "provisioningState": "Succeeded"}))
                    if key not in arm.slots:
                        return self._reply(404, {"error": {"code": "ResourceNotFound", "message": f"slot {key[1]} not found"}})
                    if tail == "" and self.command == "GET":
                        return self._reply(200, dict(site, name=f"{name}/{key[1]}", properties={"defaultHostName": f"{name}-{key[1]}.azurewebsites.net"}))
                    if tail == "/config/appsettings/list":
                        return self._reply(200, {"properties": arm.slots[key]})
                    if tail == "/config/appsettings" and self.command == "PUT":
                        arm.slots[key] = dict(body["properties"])
                        return self._reply(200, {"properties": arm.slots[key]})
                    if tail == "/syncfunctiontriggers":
                        return self._reply(204)
                if rest == "/extensions/onedeploy" and self.command == "PUT":
                    return self._reply(200, {"name": "onedeploy", "properties": {"provisioningState": "Succeeded"}})
                if rest == "/syncfunctiontriggers" and self.command == "POST":
                    return self._reply(204)
                return self._reply(400, {"error": {"code": "NotInStandIn", "message": f"{self.command} {path} is not served by the ARM stand-in"}})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route

        return Handler
