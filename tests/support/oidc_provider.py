"""A real OpenID provider for the tests, built from authlib's server components.

authlib's ``AuthorizationServer`` with the authorization code grant, its
OpenID Connect extension (ID tokens signed RS256 with a throwaway key) and
PKCE (``CodeChallenge``, required) serve discovery, authorization, token and
JWKS endpoints over real HTTP on a loopback port, from a thread. The platform
talks to it exactly as it would to a third-party provider.

The browser step is played by the test: it opens the authorization URL the
platform redirected to (the provider "signs in" the user the test chose and
redirects back) and follows the redirect to the platform's callback.

Knobs for the refusal tests change what the provider *issues*: another
issuer in the ID token, another nonce, an ID token that already expired.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Error, OAuth2Request, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonRequest
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc.jwk import RSAKey


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict, query: dict, form: dict) -> None:
        super().__init__(method, uri, headers=headers)
        self._args, self._form = query, form
        self.payload = BasicOAuth2Payload({**query, **form})

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class Knobs:
    """What the provider gets wrong on purpose (reset for each sign-in by the test)."""

    def __init__(self) -> None:
        self.issuer: str | None = None
        self.nonce: str | None = None
        self.expired: bool = False


class OidcProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.user: dict = {}
        self.knobs = Knobs()
        self.token_requests: list[dict] = []
        self._httpd: ThreadingHTTPServer | None = None
        self.issuer = ""
        self.server = self._authorization_server()

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> OidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                provider._handle(self, "GET")

            def do_POST(self):
                provider._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def register(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = Client(client_id, client_secret, redirect_uri)

    def sign_in_as(self, **claims) -> None:
        """The user who will "sign in" at the provider next: sub, email, name, groups..."""
        self.user = claims

    # --- authlib server -------------------------------------------------------------------

    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id):
                return provider.clients.get(client_id)

            def save_token(self, token, request):
                pass

            def create_oauth2_request(self, request):
                return request

            def create_json_request(self, request):
                return JsonRequest(request.method, request.uri, request.headers)

            def handle_response(self, status, body, headers):
                return status, body, headers

            def send_signal(self, name, *args, **kwargs):
                pass

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                nonce = provider.knobs.nonce if provider.knobs.nonce is not None else data.get("nonce")
                provider.codes[code] = Code(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=data.get("redirect_uri"),
                    scope=request.client.get_allowed_scope(data.get("scope")),
                    user=dict(request.user),
                    nonce=nonce,
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce, request):
                return False

            def resolve_client_private_key(self, client):
                return provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "test-key-1"}

            def get_client_claims(self, client):
                claims = {"iss": provider.knobs.issuer or provider.issuer, "aud": [client.get_client_id()]}
                if provider.knobs.expired:
                    now = int(time.time())
                    claims.update(iat=now - 3600, exp=now - 1800)
                return claims

            def generate_user_info(self, user, scope):
                return UserInfo(**user)

        server = Server(scopes_supported=["openid", "email", "profile", "groups"])
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda **kw: secrets.token_urlsafe(32))
        )
        server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])
        return server

    # --- HTTP -------------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        form: dict = {}
        if method == "POST":
            length = int(http.headers.get("content-length") or 0)
            form = {k: v[0] for k, v in parse_qs(http.rfile.read(length).decode()).items()}
        headers = {k: v for k, v in http.headers.items()}
        request = _Request(method, f"{self.issuer}{http.path}", headers, query, form)
        if parts.path == "/.well-known/openid-configuration":
            status, body, extra = 200, self._discovery(), []
        elif parts.path == "/jwks":
            status, body, extra = 200, {"keys": [self.key.as_dict(private=False)]}, []
        elif parts.path == "/authorize" and method == "GET":
            try:
                grant = self.server.get_consent_grant(request, end_user=self.user)
            except OAuth2Error as error:
                status, body, extra = 400, dict(error.get_body()), []
            else:
                status, body, extra = self.server.create_authorization_response(
                    request, grant_user=self.user, grant=grant
                )
        elif parts.path == "/token" and method == "POST":
            self.token_requests.append(dict(form))
            status, body, extra = self.server.create_token_response(request)
        else:
            status, body, extra = 404, {"error": "not_found"}, []
        payload = body if isinstance(body, str) else json.dumps(body)
        http.send_response(status)
        sent = {k.lower() for k, _ in extra}
        for key, value in extra:
            http.send_header(key, value)
        if "content-type" not in sent:
            http.send_header("Content-Type", "application/json")
        data = payload.encode()
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
        }
