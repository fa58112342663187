"""A real SAML 2.0 identity provider for the tests, built with pysaml2.

It is an independent peer: it reads the SP metadata our platform publishes,
parses the AuthnRequests our platform sends, and issues responses signed with
its own throwaway key through pysaml2 and the xmlsec1 binary, exactly as a
third-party IdP would. The messages travel the way a browser carries them:
the test follows the redirect URL to :meth:`SamlIdp.login` and posts the
returned form to the platform's assertion consumer service.

Knobs for the refusal tests change what the IdP *issues* (unsigned, wrong
audience, wrong destination, an already expired assertion); tampering after
signing (signature wrapping) is done by the tests on the signed XML.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

#: pysaml2 signs through the xmlsec1 binary (Debian package xmlsec1, in the Makefile).
XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"


def throwaway_certificate(folder: Path, common_name: str) -> tuple[Path, Path]:
    """A fresh RSA key and a self-signed certificate for it, valid one day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / "idp.key", folder / "idp.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class AuthnRequestSeen:
    """What the IdP read from the SP's AuthnRequest."""

    id: str
    issuer: str
    acs_url: str
    relay_state: str


@dataclass
class Posted:
    """The form the IdP's page would auto-post to the SP."""

    url: str
    saml_response: str
    relay_state: str

    @property
    def form(self) -> dict[str, str]:
        return {"SAMLResponse": self.saml_response, "RelayState": self.relay_state}

    @property
    def xml(self) -> str:
        return base64.b64decode(self.saml_response).decode()


class SamlIdp:
    def __init__(self, folder: Path, entity_id: str = "https://idp.example.test/saml") -> None:
        self.folder = folder
        self.entity_id = entity_id
        self.sso_url = f"{entity_id}/sso"
        self.slo_url = f"{entity_id}/slo"
        self.key_file, self.cert_file = throwaway_certificate(folder, "test-idp")
        self.server: Server | None = None
        self.sp_metadata: str | None = None

    # --- set-up ---------------------------------------------------------------

    def _config(self, sp_metadata: str | None, lifetime_minutes: int = 15) -> IdPConfig:
        conf = {
            "entityid": self.entity_id,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                        "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "xmlsec_binary": XMLSEC1,
            "metadata": {"inline": [sp_metadata, self._other_sp(sp_metadata)]} if sp_metadata else {},
        }
        config = IdPConfig()
        config.load(conf)
        return config

    #: Another service provider this IdP also serves: its responses are for that audience.
    OTHER_SP = "https://other-sp.example.test/metadata"

    def trust_sp(self, sp_metadata: str) -> None:
        """Load the SP's published metadata, as an IdP administrator would (plus another SP)."""
        self.sp_metadata = sp_metadata
        self.server = Server(config=self._config(sp_metadata))

    def _other_sp(self, sp_metadata: str) -> str:
        return re.sub(r'entityID="[^"]+"', f'entityID="{self.OTHER_SP}"', sp_metadata, count=1)

    def metadata(self) -> str:
        """The IdP's metadata XML, what the tenant administrator uploads."""
        text = create_metadata_string(None, config=self._config(None), valid=None, sign=False)
        return text.decode() if isinstance(text, bytes) else text

    # --- the browser's visit --------------------------------------------------

    def read_request(self, redirect_url: str) -> AuthnRequestSeen:
        """Parse the AuthnRequest the SP sent (HTTP-Redirect binding)."""
        assert self.server is not None, "call trust_sp() first"
        parts = urlsplit(redirect_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.sso_url, redirect_url
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        parsed = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        message = parsed.message
        return AuthnRequestSeen(
            id=message.id,
            issuer=message.issuer.text,
            acs_url=message.assertion_consumer_service_url,
            relay_state=query.get("RelayState", ""),
        )

    def login(
        self,
        redirect_url: str,
        *,
        email: str,
        attributes: dict[str, list[str]] | None = None,
        sign_response: bool = True,
        sign_assertion: bool = True,
        audience: str | None = None,
        destination: str | None = None,
        lifetime_minutes: int = 15,
    ) -> Posted:
        """The user signs in at the IdP; returns the response form for the SP's ACS."""
        request = self.read_request(redirect_url)
        server = self.server
        assert server is not None
        if lifetime_minutes != 15:
            server = Server(config=self._config(self.sp_metadata, lifetime_minutes))
        identity = {"mail": [email], **(attributes or {})}
        name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email)
        response = server.create_authn_response(
            identity,
            in_response_to=request.id,
            destination=destination or request.acs_url,
            sp_entity_id=audience or request.issuer,
            name_id=name_id,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
            best_effort=True,
        )
        encoded = base64.b64encode(str(response).encode()).decode()
        return Posted(url=request.acs_url, saml_response=encoded, relay_state=request.relay_state)

    # --- single logout (HTTP-Redirect binding) ------------------------------------

    def logout_request_url(self, sls_url: str, email: str, session_index: str, *, sign: bool) -> str:
        """IdP-initiated logout: the URL that carries our LogoutRequest to the SP."""
        assert self.server is not None
        sp_entity_id = self._sp_entity_id()
        _, request = self.server.create_logout_request(
            destination=sls_url,
            issuer_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            session_indexes=[session_index],
            sign=False,
        )
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(request),
            sls_url,
            relay_state="",
            sign=sign,
            sigalg=SIG_RSA_SHA256 if sign else None,
        )
        return dict(info["headers"])["Location"]

    def read_logout_response(self, url: str) -> str:
        """The status code of the SP's LogoutResponse (after checking it is well-formed)."""
        assert self.server is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        parsed = self.server.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
        return parsed.response.status.status_code.value

    def read_logout_request(self, url: str) -> str:
        """The NameID of the SP's LogoutRequest."""
        assert self.server is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        parsed = self.server.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        return parsed.message.name_id.text

    def _sp_entity_id(self) -> str:
        assert self.server is not None
        [entity_id] = [e for e in self.server.metadata.keys() if e not in (self.entity_id, self.OTHER_SP)]
        return entity_id


async def fill_sso_tables(admin) -> None:
    """One SAML set-up, the SSO policy and one completed sign-in: a row in every ``sso_*`` table.

    For tests that need every tenant table populated (tests/test_rls.py). ``admin``
    is a tests.support.api.Api bound to the tenant with an admin key.
    """
    idp = SamlIdp(Path(tempfile.mkdtemp(prefix="saml-idp-")))
    idp.trust_sp((await admin.get("/sso/saml/metadata")).text)
    await admin.ok("PUT", "/sso/saml", {"metadata_xml": idp.metadata()})
    await admin.ok("PUT", "/sso/settings", {"require_sso": False})
    start = await admin.client.get(f"{admin.prefix}/sso/saml/login")
    posted = idp.login(start.headers["location"], email=f"sso-{secrets.token_hex(5)}@example.test")
    signed = await admin.client.post(urlsplit(posted.url).path, data=posted.form)
    assert signed.status_code == 303, signed.text
