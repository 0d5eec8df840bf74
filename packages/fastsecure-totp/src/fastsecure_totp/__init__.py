"""FastSecure TOTP factor: ``TotpProvider`` and its store contract.

``fastsecure_totp.sql.SqlTotpStore`` (extra ``sqlalchemy``) and
``fastsecure_totp.redis.RedisTotpStore`` (extra ``redis``) are imported from their modules,
so their drivers stay optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .crypto import SecretCipher as SecretCipher
    from .events import RecoveryCodesGenerated as RecoveryCodesGenerated
    from .events import RecoveryCodeUsed as RecoveryCodeUsed
    from .events import TotpDisabled as TotpDisabled
    from .events import TotpEnrolled as TotpEnrolled
    from .events import TotpFailed as TotpFailed
    from .events import TotpVerified as TotpVerified
    from .exceptions import NotEnrolledError as NotEnrolledError
    from .exceptions import SecretDecryptionError as SecretDecryptionError
    from .exceptions import TotpError as TotpError
    from .provider import AMR as AMR
    from .provider import TotpEnrolment as TotpEnrolment
    from .provider import TotpProvider as TotpProvider
    from .store import MemoryTotpStore as MemoryTotpStore
    from .store import TotpRecord as TotpRecord
    from .store import TotpStore as TotpStore
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "SecretCipher": ".crypto",
            "RecoveryCodesGenerated": ".events",
            "RecoveryCodeUsed": ".events",
            "TotpDisabled": ".events",
            "TotpEnrolled": ".events",
            "TotpFailed": ".events",
            "TotpVerified": ".events",
            "NotEnrolledError": ".exceptions",
            "SecretDecryptionError": ".exceptions",
            "TotpError": ".exceptions",
            "AMR": ".provider",
            "TotpEnrolment": ".provider",
            "TotpProvider": ".provider",
            "MemoryTotpStore": ".store",
            "TotpRecord": ".store",
            "TotpStore": ".store",
        },
    )

__all__ = [
    "AMR",
    "MemoryTotpStore",
    "NotEnrolledError",
    "RecoveryCodeUsed",
    "RecoveryCodesGenerated",
    "SecretCipher",
    "SecretDecryptionError",
    "TotpDisabled",
    "TotpEnrolled",
    "TotpEnrolment",
    "TotpError",
    "TotpFailed",
    "TotpProvider",
    "TotpRecord",
    "TotpStore",
    "TotpVerified",
]
