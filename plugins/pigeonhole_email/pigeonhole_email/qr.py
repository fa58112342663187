"""The QR code of a pickup (or drop-off) token, as the PNG the email shows inline (H3).

The same token always gives the same bytes: segno's QR code at error
correction level M, scale 8, quiet zone 4 modules, black on white.
"""

from __future__ import annotations

import io

import segno

#: The Content-ID of the inline image; the HTML body refers to it as ``cid:...``.
QR_CID = "pickup-qr@pigeonhole"
QR_PARAMETERS = {"error": "m", "micro": False}
PNG_PARAMETERS = {"kind": "png", "scale": 8, "border": 4}


def qr_png(token: str) -> bytes:
    out = io.BytesIO()
    segno.make(token, **QR_PARAMETERS).save(out, **PNG_PARAMETERS)
    return out.getvalue()
