"""Who may call the gateway: HS256 tokens, OIDC tokens, API keys, and their revocation.

principal.py         Principal, the admin scope
authenticator.py     the one entry point: Authorization header -> Principal (or AuthError)
jwt_tokens.py        our HS256 tokens (mint and verify, secret rotation), PyJWT error mapping
oidc.py              tokens of a configured OIDC issuer, its JWKS cache
api_keys.py          the opaque `llmops_sk_...` keys and their hashes
auth_db.py           <data>/auth.db: keys and revoked token ids (written by the CLI)
credential_cache.py  the gateway's in-memory view of auth.db, reloaded on every commit
"""

from server.auth.authenticator import Authenticator, bearer_matches, build_authenticator
from server.auth.jwt_tokens import mint_token
from server.auth.principal import ADMIN_SCOPE, Principal

__all__ = ["ADMIN_SCOPE", "Authenticator", "Principal", "bearer_matches", "build_authenticator", "mint_token"]
