"""Identity: staff accounts, roles, scopes, permissions, sign-in and single sign-on.

Accounts, roles, scopes, the permission catalog, the audit log and the
platform operator live in ``users``, ``roles``, ``scopes``, ``permissions``,
``audit`` and ``platform_ops``; passwords, sessions and MFA in ``passwords``,
``sessions``, ``signin``, ``mfa`` and ``reset``; SAML and OIDC in ``sso_*``.
"""
